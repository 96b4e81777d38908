using Lens.Analysis;

namespace Lens.Dsl.Runtime;

/// <summary>
/// An intervention in force, as data: the statement that made it, the library ablation targets it
/// resolved to, its mode, and the input that mean and resample ablations take their reference
/// activations from (the current input when the `ablate` ran); resample draws rows with <see cref="Seed"/>.
/// </summary>
public sealed record ActiveIntervention(InterventionStatement Source, IReadOnlyList<AblationTarget> Targets,
    AblationMode Mode, ExperimentInput? Reference, ulong Seed)
{
    /// <summary>The intervention as experiment text (`ablate L1H* mean`), without its block.</summary>
    public string Text => Printer.Print(Source.Intervention);

    /// <summary>What the targets came to: `L1H4` (a head), `L1` (a whole block), `attn L1`, `mlp L0`, `L0N12` (a
    /// neuron).</summary>
    public IEnumerable<string> TargetLabels => Targets.Select(t => t switch
    {
        AblationTarget.Head h => $"L{h.Layer}H{h.HeadIndex}",
        AblationTarget.Block b => $"L{b.Layer}",
        AblationTarget.AttentionLayer a => $"attn L{a.Layer}",
        AblationTarget.Mlp m => $"mlp L{m.Layer}",
        AblationTarget.Neuron n => $"L{n.Layer}N{n.NeuronIndex}",
        _ => t.ToString(),
    });
}
