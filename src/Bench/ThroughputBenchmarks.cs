using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>Tokens per second and achieved GFLOP/s of the forward, next to a large float32 matmul's GFLOP/s timed
/// alternately with it.</summary>
public static class ThroughputBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        var shapes = ctx.Options.Shapes.Where(s => s.Pos <= model.Config.NCtx).ToList();
        if (shapes.Count == 0) yield break;
        var (batch, pos) = shapes.Contains((8, 128)) ? (8, 128) : shapes.MaxBy(s => s.Batch * s.Pos);
        using var tokens = BenchModels.Tokens(model.Config, batch, pos);
        using var a = randn(CeilingSize, CeilingSize);
        using var b = randn(CeilingSize, CeilingSize);
        void Forward() { using var l = model.Forward(tokens); }
        void Matmul() { using var _ = mm(a, b); }
        // The forward and the matmul ceiling alternate, so that both see the same machine: on a shared
        // or virtualised machine the ceiling timed a minute apart from the forward can differ by 10 %.
        ctx.Options.Progress($"forward {batch}x{pos} interleaved with the matmul ceiling");
        var once = Timing.Milliseconds(Forward) + Timing.Milliseconds(Matmul);
        var (forwardMs, matmulMs, timeRatio) =
            Timing.Paired(Forward, Matmul, 1, ctx.Options.Repetitions(once, min: ctx.Options.Quick ? 3 : 7));

        long tokensPerRun = batch * pos;
        var tokensPerSecond = new Samples(forwardMs.Values.Select(v => tokensPerRun / (v / 1000)));
        yield return BenchRow.FromSamples($"forward throughput {batch}x{pos}", tokensPerSecond, "tokens/s", null, null,
            null);

        double flops = ForwardFlops(model.Config, batch, pos),
            ceilingFlops = 2.0 * CeilingSize * CeilingSize * CeilingSize;
        var gflops = new Samples(forwardMs.Values.Select(v => flops / (v / 1000) / 1e9));
        var ceiling = new Samples(matmulMs.Values.Select(v => ceilingFlops / (v / 1000) / 1e9));
        // GFLOP/s ratio of a pair = (flops / forward time) / (ceiling flops / matmul time); the median over pairs.
        double ratio = flops / ceilingFlops / timeRatio;
        yield return new BenchRow($"forward GFLOP/s {batch}x{pos}, vs a {CeilingSize}² float32 matmul's (interleaved)",
            gflops.Median, gflops.Min, gflops.Max, "GFLOP/s", ceiling.Median, ratio, Target.Ratio(">=", 0.8),
            $"{flops / 1e9:0.0} GFLOP per forward (matrix multiplies: projections, causal attention, MLP, " +
            $"unembed); {forwardMs.Values.Count} pairs; torch threads {get_num_threads()}");
    }

    const int CeilingSize = 2048;

    /// <summary>Floating-point operations of one forward's matrix multiplies (2 per multiply-add).</summary>
    public static double ForwardFlops(HookedTransformerConfig c, long batch, long pos)
    {
        double tokens = batch * pos, d = c.DModel, hd = (double)c.NHeads * c.DHead, kvd = (double)c.KvHeads * c.DHead;
        double perTokenLayer = 2 * d * (hd + 2 * kvd) + 2 * hd * d;                           // Q, K, V, O
        if (!c.AttnOnly) perTokenLayer += 2 * d * (c.DMlp ?? 0) * (c.GatedMlp ? 3 : 2);         // MLP
        // QKᵀ and pattern·V, causal half
        double attention = 2 * 2 * hd * (pos * (pos + 1) / 2.0) * batch;
        return c.NLayers * (tokens * perTokenLayer + attention) + tokens * 2 * d * c.DVocabOut;
    }
}
