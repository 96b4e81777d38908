using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// Gradients at GPT-2 small's shapes on a 1×20 prompt: a forward and backward that caches every
/// activation's gradient against one forward, and attribution patching of every head (a clean forward,
/// a corrupted forward and backward, the per-head scores) against one forward, so that both ratios read
/// as forward-equivalents. The activation-patching sweep it replaces costs one forward per head (the
/// patching row's per-cell figure times layers × heads).
/// </summary>
public static class GradientBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Small;
        var cfg = model.Config;
        const long pos = 20;
        using var clean = BenchModels.Tokens(cfg, 1, pos, seed: 1);
        using var corrupted = BenchModels.Tokens(cfg, 1, pos, seed: 2);
        void Forward() { using var l = model.Forward(corrupted); }

        var backwardName = $"forward + backward caching every activation and its _grad, {ctx.SmallLabel} 1x{pos}: vs one forward (backward <= 3 forwards)";
        ctx.Options.Progress(backwardName);
        void Backward() { using var run = model.RunWithCache(corrupted, ReturnType.Loss, includeBackward: true); }
        var once = Timing.Milliseconds(Backward);
        var (m, b, ratio) = Timing.Paired(Backward, Forward, 1, ctx.Options.Repetitions(once, 3, 9));
        yield return BenchRow.FromSamples(backwardName, m, "ms", b, ratio, Target.Ratio("<=", 4.0));

        var heads = cfg.NLayers * cfg.NHeads;
        var attributionName = $"attribution patching of all {heads} heads (hook_z), {ctx.SmallLabel} 1x{pos}: vs one forward (activation patching: {heads} forwards)";
        ctx.Options.Progress(attributionName);
        Func<Tensor, Tensor> metric = logits => logits.select(1, -1).select(-1, 0).mean();
        void Attribute()
        {
            using var ap = AttributionPatching.Run(model, clean, corrupted, metric, HookedTransformer.NamesFilter("blocks.*.attn.hook_z"));
            using var scores = ap.AttnHeadOutAllPos();
        }
        once = Timing.Milliseconds(Attribute);
        (m, b, ratio) = Timing.Paired(Attribute, Forward, 1, ctx.Options.Repetitions(once, 3, 9));
        yield return BenchRow.FromSamples(attributionName, m, "ms", b, ratio, Target.Ratio("<=", 3.0));
    }
}
