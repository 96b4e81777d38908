using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>Tokens per second and achieved GFLOP/s of the forward, next to a large float32 matmul's GFLOP/s measured in the same run.</summary>
public static class ThroughputBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        var shapes = ctx.Options.Shapes.Where(s => s.Pos <= model.Config.NCtx).ToList();
        if (shapes.Count == 0) yield break;
        var (batch, pos) = shapes.Contains((8, 128)) ? (8, 128) : shapes.MaxBy(s => s.Batch * s.Pos);
        if (!ctx.ForwardMs.TryGetValue((batch, pos), out var ms))
        {
            using var tokens = BenchModels.Tokens(model.Config, batch, pos);
            ctx.Options.Progress($"forward {batch}x{pos} for throughput");
            var once = Timing.Milliseconds(() => { using var l = model.Forward(tokens); });
            ms = Timing.Repeat(() => { using var l = model.Forward(tokens); }, 1, ctx.Options.Repetitions(once) );
            ctx.ForwardMs[(batch, pos)] = ms;
        }
        long tokensPerRun = batch * pos;
        var tokensPerSecond = new Samples(ms.Values.Select(v => tokensPerRun / (v / 1000)));
        yield return BenchRow.FromSamples($"forward throughput {batch}x{pos}", tokensPerSecond, "tokens/s", null, null, null);

        ctx.Options.Progress("matmul ceiling");
        var ceiling = MatmulCeiling(ctx.Options.Quick ? 3 : 7);
        double flops = ForwardFlops(model.Config, batch, pos);
        var gflops = new Samples(ms.Values.Select(v => flops / (v / 1000) / 1e9));
        yield return new BenchRow($"forward GFLOP/s {batch}x{pos}, vs a 2048² float32 matmul's", gflops.Median, gflops.Min, gflops.Max, "GFLOP/s",
            ceiling.Median, gflops.Median / ceiling.Median, Target.Ratio(">=", 0.8),
            $"{flops / 1e9:0.0} GFLOP per forward (matrix multiplies: projections, causal attention, MLP, unembed); torch threads {get_num_threads()}");
    }

    /// <summary>GFLOP/s of a 2048 × 2048 × 2048 float32 matmul.</summary>
    static Samples MatmulCeiling(int reps)
    {
        using var a = randn(2048, 2048);
        using var b = randn(2048, 2048);
        double flops = 2.0 * 2048 * 2048 * 2048;
        var ms = Timing.Repeat(() => { using var _ = mm(a, b); }, 1, reps);
        return new Samples(ms.Values.Select(v => flops / (v / 1000) / 1e9));
    }

    /// <summary>Floating-point operations of one forward's matrix multiplies (2 per multiply-add).</summary>
    public static double ForwardFlops(HookedTransformerConfig c, long batch, long pos)
    {
        double tokens = batch * pos, d = c.DModel, hd = (double)c.NHeads * c.DHead, kvd = (double)c.KvHeads * c.DHead;
        double perTokenLayer = 2 * d * (hd + 2 * kvd) + 2 * hd * d;                           // Q, K, V, O
        if (!c.AttnOnly) perTokenLayer += 2 * d * (c.DMlp ?? 0) * (c.GatedMlp ? 3 : 2);         // MLP
        double attention = 2 * 2 * hd * (pos * (pos + 1) / 2.0) * batch;                       // QKᵀ and pattern·V, causal half
        return c.NLayers * (tokens * perTokenLayer + attention) + tokens * 2 * d * c.DVocabOut;
    }
}
