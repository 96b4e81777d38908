using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `attribute patch TARGET from SOURCE [metric M]`: attribution patching with the analysis library. Each cell is
/// the estimated change of the metric when that piece of the clean run (SOURCE) is patched into the current
/// input (the corrupted run): Σ (clean − corrupted) · ∂metric/∂activation at the corrupted run. Targets and
/// metrics as `patch` (its cells are patched values; these are changes from the corrupted value).
/// </summary>
internal static class AttributePatchStages
{
    public static ExperimentState AttributePatch(AttributePatchStatement s, ExperimentState state) =>
        PatchStages.InChunks(s, "attribute patch", s.Source, s.Metric, state,
            (withModel, clean, rows) => AttributeRows(s, withModel, clean, rows));

    /// <summary>
    /// The attribution table on some rows of the current input (null: all of them), from <paramref name="clean"/>, the
    /// same rows of the source.
    /// </summary>
    static ResultValue AttributeRows(AttributePatchStatement s, ExperimentState state, ExperimentInput clean,
        ExperimentInput? rows)
    {
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "attribute patch", masked: true, rows);
        var (model, corrupted, corruptedTokens) = (pass.Model, pass.Input, pass.Tokens);
        var (activations, axes) = s.Target switch
        {
            PatchTarget.ResidPre => (["resid_pre"], new[] { "layer", "pos" }),
            PatchTarget.AttnOut => (["attn_out"], ["layer", "pos"]),
            PatchTarget.MlpOut => (["mlp_out"], ["layer", "pos"]),
            PatchTarget.Heads => (["z"], ["layer", "head"]),
            PatchTarget.HeadsByPos => (["z"], ["layer", "pos", "head"]),
            _ => (model.Config.AttnOnly ? ["resid_pre", "attn_out"] : new[] { "resid_pre", "attn_out", "mlp_out" },
                new[] { "layer", "pos" }),
        };
        var names =
            HookedTransformer.NamesFilter(
                activations.Select(a => a == "z" ? "blocks.*.attn.hook_z" : "blocks.*.hook_" + a).ToArray());
        using var attribution = AttributionPatching.Run(model, clean.ToTensor(model.Device), corruptedTokens,
            Metric(s.Metric, model, corrupted, corruptedTokens, pass.AttentionMask), names,
            PatchStages.MetricReads(s.Metric, model, corrupted), pass.AttentionMask);
        var parts = activations.Select(a => attribution.Attribute(a, axes)).ToList();
        var values = parts.Count == 1 ? parts[0].Values : stack(parts.Select(p => p.Values).ToArray(), 0);
        string[] axisNames = parts.Count == 1 ? [.. parts[0].AxisNames] : ["component", .. parts[0].AxisNames];
        var axisLabels = parts.Count == 1 ? parts[0].AxisLabels : [activations, .. parts[0].AxisLabels];
        var measure = Printer.Print(s.Metric);
        var title = $"attribute patch {Keywords.PatchTargets.Text(s.Target)} from {Printer.Print(s.Source)} "
                    + $"into {Printer.Print(corrupted.Source)}: "
                    + $"estimated change of {measure} (attribution patching)";
        List<KeyValuePair<string, double>> summary =
            [new("clean", attribution.CleanMetric), new("corrupted", attribution.CorruptedMetric)];
        ResultValue value = s.Target == PatchTarget.Heads
            ? new LayerHeadValue(measure, TensorData.Grid(values))
            : new TensorValue(measure, TensorData.Flat(values), values.shape.Select(d => (int)d).ToArray(), axisNames,
                axisNames.Select((axis, a) => axis == "pos"
                    ? corrupted.Tokens[0].Select((t, i) => $"{i} {Lens.Visualization.TokenText.Display(t)}").ToArray()
                    : axisLabels[a].ToArray()).ToArray());
        foreach (var p in parts) p.Dispose();
        return value with { Title = title, Summary = summary };
    }

    /// <summary>The metrics of `patch` as differentiable functions of the logits (scalar tensors).</summary>
    static Func<Tensor, Tensor> Metric(Metric metric, HookedTransformer model, ExperimentInput input, Tensor tokens,
        Tensor? mask)
    {
        switch (metric)
        {
            case LogitDiffMetric m:
                long correct = AttributionStages.IdOf(model, m.Correct),
                    incorrect = AttributionStages.IdOf(model, m.Incorrect);
                return logits =>
                {
                    var last = RealPositions.AtLast(logits, input);                 // each row's last real token
                    return (last.select(-1, correct) - last.select(-1, incorrect)).mean();
                };
            case ProbMetric m:
                long id = AttributionStages.IdOf(model, m.Token);
                return logits => RealPositions.AtLast(logits, input).softmax(-1).select(-1, id).mean();
            default:
                return logits => LossFunctions.LmCrossEntropy(logits, tokens, attentionMask: mask);
        }
    }
}
