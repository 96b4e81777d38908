using Lens.Sae;
using Lens.Sae.Training;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// SAE rows: the forward with a 16× SAE spliced into the middle layer's residual stream against the plain
/// forward, and SAE training throughput (activations per second) with its GEMM GFLOP/s next to a large
/// float32 matmul's, timed alternately.
/// </summary>
public static class SaeBenchmarks
{
    const int Expansion = 16, TrainBatch = 4096, CeilingSize = 2048;

    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        var (batch, pos) = ctx.Options.Shapes[0];
        int dIn = model.Config.DModel, dSae = Expansion * dIn, layer = model.Config.NLayers / 2;
        string hook = $"blocks.{layer}.hook_resid_post";
        using var sae = RandomSae(dIn, dSae, hook);
        using var tokens = BenchModels.Tokens(model.Config, batch, pos);
        ctx.Options.Progress($"forward {batch}x{pos} with a {Expansion}x SAE at {hook}");
        var once = Timing.Milliseconds(() => { using var l = model.Forward(tokens); });
        var (m, b, ratio) = Timing.Paired(
            () => { using (model.AttachSae(sae)) { using var l = model.Forward(tokens); } },
            () => { using var l = model.Forward(tokens); },
            1, ctx.Options.Repetitions(2 * once));
        yield return BenchRow.FromSamples($"forward {batch}x{pos} with a {Expansion}x SAE ({dIn}->{dSae}) spliced " +
            $"at {hook}, vs plain forward", m, "ms", b, ratio,
            Target.Ratio("<=", 1.2),
            $"a standard SAE with random weights; attaching, encoding and decoding add 4·{dIn}·{dSae} FLOP per token");
        yield return Training(ctx, dIn, dSae);
    }

    static SparseAutoencoder RandomSae(int dIn, int dSae, string hook)
    {
        using var scope = NewDisposeScope();
        var wDec = randn(dSae, dIn);
        wDec = wDec / wDec.norm(-1, keepdim: true);
        var state = new Dictionary<string, Tensor>
        {
            ["W_enc"] = wDec.t().contiguous(), ["b_enc"] = full(dSae, -0.5f), ["W_dec"] = wDec, ["b_dec"] = zeros(dIn),
        };
        foreach (var t in state.Values) t.DetachFromDisposeScope();
        return new SparseAutoencoder(
            new SaeConfig { Architecture = "standard", DIn = dIn, DSae = dSae, HookName = hook }, state, "bench");
    }

    sealed class RandomActivations(int dIn) : IActivationSource
    {
        public int DIn => dIn;
        public Tensor NextBatch(int n) => randn(n, dIn);
    }

    static BenchRow Training(BenchContext ctx, int dIn, int dSae)
    {
        int steps = ctx.Options.Quick ? 4 : 10;
        ctx.Options.Progress($"SAE training {dIn}->{dSae}, {steps} steps of {TrainBatch} activations, interleaved " +
            $"with the matmul ceiling");
        var options = new SaeTrainingOptions
        {
            DSae = dSae, TrainingTokens = (long)steps * TrainBatch, TrainBatchSizeTokens = TrainBatch, Progress = false
        };
        var metadata = new SaeMetadata { HookName = "bench" };
        using var a = randn(CeilingSize, CeilingSize);
        using var b = randn(CeilingSize, CeilingSize);
        void Train() { using var r = SaeTrainer.Train(new RandomActivations(dIn), options, metadata); }
        void Matmul() { using var _ = mm(a, b); }
        var once = Timing.Milliseconds(Train) + Timing.Milliseconds(Matmul);
        var (trainMs, matmulMs, timeRatio) =
            Timing.Paired(Train, Matmul, 0, ctx.Options.Repetitions(once, min: 3, max: 5));
        double activations = (double)steps * TrainBatch;
        var perSecond = new Samples(trainMs.Values.Select(v => activations / (v / 1000)));
        // encoder and decoder GEMMs, forward (2·n·d·s each) and backward (twice that): 12·n·d·s per step
        double flops = 12.0 * activations * dIn * dSae, ceilingFlops = 2.0 * CeilingSize * CeilingSize * CeilingSize;
        var gflops = trainMs.Values.Select(v => flops / (v / 1000) / 1e9).ToList();
        double ceiling = Samples.MedianOf(matmulMs.Values.Select(v => ceilingFlops / (v / 1000) / 1e9));
        return new BenchRow($"SAE training {dIn}->{dSae} (standard, batch {TrainBatch}), activations/s; value: GEMM " +
            $"GFLOP/s vs a {CeilingSize}² matmul's",
            perSecond.Median, perSecond.Min, perSecond.Max, "activations/s", null, flops / ceilingFlops / timeRatio,
            null,
            $"{Samples.MedianOf(gflops):0.0} GFLOP/s in the SAE's GEMMs (12·n·d_in·d_sae per step) against the " +
            $"ceiling's {ceiling:0.0}; {steps} steps per run including setup; torch threads {get_num_threads()}");
    }
}
