namespace Lens.Bench;

/// <summary>Resident memory across many consecutive forwards of the same input: it must stay flat after
/// warm-up.</summary>
public static class MemoryBenchmarks
{
    public static BenchRow Run(BenchContext ctx)
    {
        var model = ctx.Small;
        int forwards = ctx.Options.Quick ? 200 : 1000, warmup = ctx.Options.Quick ? 50 : 100, every = forwards / 10;
        var name = $"resident memory growth over {forwards} forwards ({ctx.SmallLabel}, 1x64), after {warmup} warm-up";
        var target = Target.Value("<", 5);
        if (!ProcessMemory.Available) return BenchRow.Skipped(name, "%", target, "no /proc/self/status");
        using var tokens = BenchModels.Tokens(model.Config, 1, Math.Min(64, model.Config.NCtx));
        ctx.Options.Progress(name);
        for (int i = 0; i < warmup; i++) { using var l = model.Forward(tokens); }
        ProcessMemory.Settle();
        long start = ProcessMemory.Resident();
        long tensorsBefore = TorchSharp.torch.Tensor.TotalCount;
        var growth = new List<double>();
        for (int i = 1; i <= forwards; i++)
        {
            using (var l = model.Forward(tokens)) { }
            if (i % every == 0)
            {
                ProcessMemory.Settle();
                growth.Add(100.0 * (ProcessMemory.Resident() - start) / start);
            }
        }
        long tensorsAfter = TorchSharp.torch.Tensor.TotalCount;
        var end = growth[^1];
        return new BenchRow(name, end, growth.Min(), growth.Max(), "%", null, null, target,
            $"VmRSS {ProcessMemory.Mb(start):0} MB after warm-up; live tensors {tensorsBefore} → {tensorsAfter}; " +
            $"median = growth at the end, min/max over {growth.Count} samples");
    }
}
