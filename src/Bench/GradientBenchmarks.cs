using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// Gradients at GPT-2 small's shapes (the bench's main model) on a 1×20 prompt: a forward and backward that caches
/// every activation's gradient against one forward, and attribution patching of every head (a clean forward,
/// a corrupted forward and backward, the per-head scores) against one forward, so that both ratios read
/// as forward-equivalents. The attribution metric (one logit at the last position) declares what it reads,
/// so neither run computes, nor the backward differentiates, the 50,257-wide unembedding of every position.
/// The activation-patching sweep it replaces costs one forward per head.
/// </summary>
public static class GradientBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        var cfg = model.Config;
        const long pos = 20;
        using var clean = BenchModels.Tokens(cfg, 1, pos, seed: 1);
        using var corrupted = BenchModels.Tokens(cfg, 1, pos, seed: 2);
        void Forward() { using var l = model.Forward(corrupted); }

        var backwardName = $"forward + backward caching every activation and its _grad, {ctx.ModelLabel} 1x{pos}: vs " +
            $"one forward (backward <= 3 forwards)";
        ctx.Options.Progress(backwardName);
        void Backward() { using var run = model.RunWithCache(corrupted, ReturnType.Loss, includeBackward: true); }
        var once = Timing.Milliseconds(Backward);
        var (m, b, ratio) = Timing.Paired(Backward, Forward, 1, ctx.Options.Repetitions(once, 3, 9));
        yield return BenchRow.FromSamples(backwardName, m, "ms", b, ratio, Target.Ratio("<=", 4.0),
            "the backward alone is this minus one forward (<= 3)");

        var heads = cfg.NLayers * cfg.NHeads;
        var attributionName = $"attribution patching of all {heads} heads (hook_z), {ctx.ModelLabel} 1x{pos}: vs one " +
            $"forward (activation patching: {heads} forwards)";
        ctx.Options.Progress(attributionName);
        Func<Tensor, Tensor> metric = logits => logits.select(1, -1).select(-1, 0).mean();
        void Attribute()
        {
            using var ap = AttributionPatching.Run(model, clean, corrupted, metric,
                HookedTransformer.NamesFilter("blocks.*.attn.hook_z"), LogitsRead.At(-1, 0));
            using var scores = ap.AttnHeadOutAllPos();
        }
        once = Timing.Milliseconds(Attribute);
        (m, b, ratio) = Timing.Paired(Attribute, Forward, 1, ctx.Options.Repetitions(once, 3, 9));
        yield return BenchRow.FromSamples(attributionName, m, "ms", b, ratio, Target.Ratio("<=", 3.0));
    }
}
