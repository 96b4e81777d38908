using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `patch TARGET from SOURCE [metric M]`: activation patching with the analysis library. The source is the
/// clean run whose activations are patched in; the current input is the corrupted run patched into. Each
/// cell is the metric of one patched run; the summary gives the metric of the clean and the corrupted runs.
/// Metrics: `logit_diff A B` (mean over rows, last position), `prob A` (mean probability at the last
/// position), `loss` (mean next-token loss on the current input's tokens).
/// </summary>
internal static class PatchStages
{
    public static ExperimentState Patch(PatchStatement s, ExperimentState state)
    {
        state = state.WithModel();
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "patch");
        var (model, corrupted, corruptedTokens) = (pass.Model, pass.Input, pass.Tokens);
        var clean = Inputs.Resolve(s.Source, model, state);
        var metric = Metric(s.Metric, model, corruptedTokens);
        var options = new PatchingOptions { MetricReads = MetricReads(s.Metric, model) };
        var activation = s.Target switch
        {
            PatchTarget.ResidPre => "resid_pre",
            PatchTarget.AttnOut => "attn_out",
            PatchTarget.MlpOut => "mlp_out",
            PatchTarget.Heads or PatchTarget.HeadsByPos => "z",
            _ => null,
        };
        string[] names = activation is null ? ["resid_pre", "attn_out", "mlp_out"] : [activation];
        using var cleanRun = model.RunWithCache(clean.ToTensor(model.Device), HookedTransformer.NamesFilter([.. names.Select(n => "blocks.*.hook_" + n), "blocks.*.attn.hook_z"]));
        double cleanMetric = metric(cleanRun.Logits);
        double corruptedMetric = metric(model.Forward(corruptedTokens));
        using var result = s.Target switch
        {
            PatchTarget.ResidPre => Patching.ResidPre(model, corruptedTokens, cleanRun.Cache, metric, options),
            PatchTarget.AttnOut => Patching.AttnOut(model, corruptedTokens, cleanRun.Cache, metric, options),
            PatchTarget.MlpOut => Patching.MlpOut(model, corruptedTokens, cleanRun.Cache, metric, options),
            PatchTarget.Heads => Patching.AttnHeadOutAllPos(model, corruptedTokens, cleanRun.Cache, metric, options),
            PatchTarget.HeadsByPos => Patching.AttnHeadOutByPos(model, corruptedTokens, cleanRun.Cache, metric, options),
            _ => Patching.GetActPatchBlockEvery(model, corruptedTokens, cleanRun.Cache, metric, options),
        };
        var measure = Printer.Print(s.Metric);
        var title = $"patch {Keywords.PatchTargets.Text(s.Target)} from {Printer.Print(s.Source)} into {Printer.Print(corrupted.Source)}: {measure} of each patched run";
        List<KeyValuePair<string, double>> summary = [new("clean", cleanMetric), new("corrupted", corruptedMetric)];
        ResultValue value = s.Target == PatchTarget.Heads
            ? new LayerHeadValue(measure, TensorData.Grid(result.Values))
            : new TensorValue(measure, TensorData.Flat(result.Values), result.Values.shape.Select(d => (int)d).ToArray(), [.. result.AxisNames],
                result.AxisNames.Select((axis, a) => axis == "pos"
                    ? corrupted.Tokens[0].Select((t, i) => $"{i} {Lens.Visualization.TokenText.Display(t)}").ToArray()
                    : result.AxisLabels[a].ToArray()).ToArray());
        return state.WithResult(s, value with { Title = title, Summary = summary });
    }

    /// <summary>The logits a metric reads (a batched sweep computes only those): logit_diff two columns and prob one row at the last position; the loss every logit.</summary>
    internal static LogitsRead? MetricReads(Metric metric, HookedTransformer model) => metric switch
    {
        LogitDiffMetric m => LogitsRead.At(-1, AttributionStages.IdOf(model, m.Correct), AttributionStages.IdOf(model, m.Incorrect)),
        ProbMetric => LogitsRead.At(-1),
        _ => null,
    };

    static Func<Tensor, double> Metric(Metric metric, HookedTransformer model, Tensor tokens)
    {
        switch (metric)
        {
            case LogitDiffMetric m:
                var correct = tensor(AttributionStages.IdOf(model, m.Correct));
                var incorrect = tensor(AttributionStages.IdOf(model, m.Incorrect));
                return LogitDifference.Metric(correct, incorrect);
            case ProbMetric m:
                long id = AttributionStages.IdOf(model, m.Token);
                return logits =>
                {
                    using var scope = NewDisposeScope();
                    return logits.select(1, -1).to(ScalarType.Float64).softmax(-1).select(-1, id).mean().item<double>();
                };
            default:
                return logits =>
                {
                    using var scope = NewDisposeScope();
                    return LossFunctions.LmCrossEntropy(logits, tokens).to(ScalarType.Float64).item<double>();
                };
        }
    }
}
