using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>The forward rows: Lens against a plain TorchSharp forward of the same weights, at each shape.</summary>
public static class ForwardBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        foreach (var (batch, pos) in ctx.Options.Shapes)
        {
            var name = $"forward {batch}x{pos}, no hooks, vs plain TorchSharp";
            if (pos > model.Config.NCtx)
            {
                yield return BenchRow.Skipped(name, "ms", Target.Ratio("<=", 1.05),
                    $"{pos} positions exceed n_ctx {model.Config.NCtx}");
                continue;
            }
            using var tokens = BenchModels.Tokens(model.Config, batch, pos);
            ctx.Options.Progress($"forward {batch}x{pos}");
            if (ctx.Plain is not PlainForward plain)
            {
                var once = Timing.Milliseconds(() => { using var l = model.Forward(tokens); });
                var alone =
                    Timing.Repeat(() => { using var l = model.Forward(tokens); }, 0, ctx.Options.Repetitions(once));
                yield return BenchRow.FromSamples(name, alone, "ms", null, null, Target.Ratio("<=", 1.05),
                    $"no plain baseline: {ctx.PlainUnsupported}");
                continue;
            }
            // Comparing the logits runs both once: that is the warm-up, and its time sets the repetitions.
            double diff = 0;
            var first = Timing.Milliseconds(() => diff = MaxDifference(model, plain, tokens)) / 2;
            var (m, b, ratio) = Timing.Paired(() => { using var l = model.Forward(tokens); },
                () => { using var l = plain.Forward(tokens); }, 0, ctx.Options.Repetitions(first));
            yield return BenchRow.FromSamples(name, m, "ms", b, ratio, Target.Ratio("<=", 1.05),
                $"same logits within {diff:0.0e+0}");
        }
    }

    /// <summary>Largest |Lens − plain| over the logits: the baseline must compute the same thing.</summary>
    static double MaxDifference(HookedTransformer model, PlainForward plain, Tensor tokens)
    {
        using var a = model.Forward(tokens);
        using var b = plain.Forward(tokens);
        using var d = (a - b).abs().max();
        var diff = d.item<float>();
        if (!(diff < 1e-3))
            throw new InvalidOperationException(
                $"the plain baseline disagrees with Lens by {diff} (the bench would compare different computations)");
        return diff;
    }
}
