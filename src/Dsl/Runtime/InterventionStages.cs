using Lens.Analysis;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `ablate TARGET [mode] [{ ... }]`: resolves the target to the analysis library's ablation targets and
/// puts the intervention in force, for its block or (without one) for the rest of the enclosing sequence.
/// Heads ablate their hook_z slice; a selection of whole layers (`L1`, `L*`) ablates the layers' blocks.
/// Mean and resample ablations take their reference activations from the current input. Scores computed
/// inside a block describe the ablated model, so they stay in the block.
/// </summary>
internal static class InterventionStages
{
    public static ExperimentState Ablate(InterventionStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var ablation = (Ablation)s.Intervention;
        if (ablation.Target is FeatureTarget feature) return AblateFeature(s, feature, state);
        var active = new ActiveIntervention(s, Targets(ablation.Target, state), ablation.Mode,
            ablation.Mode == AblationMode.Zero ? null : state.Input, (ulong)state.Seed);
        var applied = state with
        {
            Interventions = state.Interventions.Add(active),
            InterventionLog = state.InterventionLog.Add(active)
        };
        if (s.Body is null) return applied;
        var inner = applied;
        foreach (var statement in s.Body) inner = StageRunner.Apply(statement, inner);
        return EndBlock(inner, state);
    }

    /// <summary>The state after a block: its interventions, SAEs, feature edits, names and scores end with it (and what
    /// `expect` reads); its results (and its inputs) carry on.</summary>
    static ExperimentState EndBlock(ExperimentState inner, ExperimentState outer) =>
        inner with
        {
            Interventions = outer.Interventions,
            Bindings = outer.Bindings,
            Scores = outer.Scores,
            Latest = outer.Latest,
            Saes = outer.Saes,
            FeatureEdits = outer.FeatureEdits,
        };

    /// <summary>`ablate feature N`: the most recent SAE's feature N set to 0 on hook_sae_acts_post at every
    /// position.</summary>
    static ExperimentState AblateFeature(InterventionStatement s, FeatureTarget target, ExperimentState state)
    {
        var sae = state.Saes.LastOrDefault()
            ?? throw new InvalidOperationException("`ablate feature` needs an SAE: add `sae load PATH` before it");
        var applied = state with
        {
            FeatureEdits = state.FeatureEdits.Add(new FeatureEdit(Printer.Print(s.Intervention), sae.Sae,
                target.Feature, 0, Set: true))
        };
        if (s.Body is null) return applied;
        var inner = applied;
        foreach (var statement in s.Body) inner = StageRunner.Apply(statement, inner);
        return EndBlock(inner, state);
    }

    static IReadOnlyList<AblationTarget> Targets(InterventionTarget target, ExperimentState state) => target switch
    {
        HeadsTarget { Selection: LayerSelector layers } => Enumerable.Range(0, state.RequireModel().Config.NLayers)
            .Where(l => layers.Layer is not int only || only == l)
            .Select(l => (AblationTarget)new AblationTarget.Block(l)).ToList(),
        HeadsTarget t => HeadStages.Resolve(t.Selection, state)
            .Select(h => (AblationTarget)new AblationTarget.Head(h.Layer, h.Head)).ToList(),
        MlpTarget t => [new AblationTarget.Mlp(t.Layer)],
        AttnTarget t => [new AblationTarget.AttentionLayer(t.Layer)],
        NeuronsTarget t => t.Neurons.Select(n => (AblationTarget)new AblationTarget.Neuron(t.Layer, n)).ToList(),
        _ => throw new ArgumentException($"unknown intervention target {target.GetType().Name}"),
    };
}
