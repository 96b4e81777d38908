namespace Lens.Bench;

/// <summary>RunWithCache against a plain forward: time with every activation and with one hook per layer, and peak
/// memory.</summary>
public static class CacheBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        var (batch, pos) = ctx.Options.Shapes[0];
        using var tokens = BenchModels.Tokens(model.Config, batch, pos);
        ctx.Options.Progress($"RunWithCache {batch}x{pos}");
        var once = Timing.Milliseconds(() => { using var r = model.RunWithCache(tokens); });
        var reps = ctx.Options.Repetitions(once);
        var (m, b, ratio) = Timing.Paired(() => { using var r = model.RunWithCache(tokens); },
            () => { using var l = model.Forward(tokens); }, 1, reps);
        int count;
        using (var r = model.RunWithCache(tokens)) count = r.Cache.Count;
        yield return BenchRow.FromSamples($"RunWithCache {batch}x{pos}, all {count} activations, vs forward", m, "ms",
            b, ratio, Target.Ratio("<=", 1.25));
        yield return PeakMemory(model, tokens, $"{batch}x{pos}");

        var perLayer = HookedTransformer.NamesFilter("blocks.*.hook_resid_post");
        (m, b, ratio) = Timing.Paired(() => { using var r = model.RunWithCache(tokens, perLayer); },
            () => { using var l = model.Forward(tokens); }, 1, reps);
        yield return BenchRow.FromSamples($"RunWithCache {batch}x{pos}, one hook per layer (resid_post), vs forward", m,
            "ms", b, ratio, Target.Ratio("<=", 1.05));
    }

    /// <summary>
    /// Resident memory that RunWithCache adds at its peak, against the bytes it must hold at the end
    /// (the cached activations and the logits).
    /// </summary>
    static BenchRow PeakMemory(HookedTransformer model, TorchSharp.torch.Tensor tokens, string shape)
    {
        var name = $"RunWithCache {shape} peak memory, vs cached + logits bytes";
        var target = Target.Ratio("<=", 1.10);
        if (!ProcessMemory.Available) return BenchRow.Skipped(name, "MB", target, "no /proc/self/status");
        var peaks = new List<double>();
        double needed = 0;
        for (int i = 0; i < 3; i++)
        {
            ProcessMemory.Settle();
            var before = ProcessMemory.Resident();
            if (!ProcessMemory.ResetPeak())
                return BenchRow.Skipped(name, "MB", target,
                    "the kernel refused to reset VmHWM (/proc/self/clear_refs)");
            using var run = model.RunWithCache(tokens);
            peaks.Add(ProcessMemory.Mb(ProcessMemory.Peak() - before));
            needed = ProcessMemory.Mb(run.Cache.Bytes + run.Logits.numel() * run.Logits.ElementSize);
        }
        var s = new Samples(peaks);
        return new BenchRow(name, s.Median, s.Min, s.Max, "MB", needed, s.Median / needed, target,
            "peak = VmHWM during the run − VmRSS before it");
    }
}
