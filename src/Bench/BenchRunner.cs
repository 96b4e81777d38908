using System.Diagnostics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>Runs the row groups in order and gathers the report.</summary>
public static class BenchRunner
{
    public static BenchReport Run(BenchOptions options)
    {
        var started = DateTime.UtcNow;
        var clock = Stopwatch.StartNew();
        var loadStart = MachineInfo.LoadAverage();
        var rows = new List<BenchRow>();
        options.Progress(options.Model is null
            ? "building a random model at GPT-2 small's shape"
            : $"loading {options.Model}");
        using (var ctx = new BenchContext(options))
        using (no_grad())
        {
            void Add(IEnumerable<BenchRow> more) { foreach (var r in more) rows.Add(r); }
            if (options.Runs("forward")) Add(ForwardBenchmarks.Run(ctx));
            if (options.Runs("hooks")) Add(HookBenchmarks.Run(ctx));
            if (options.Runs("cache")) Add(CacheBenchmarks.Run(ctx));
            if (options.Runs("patching"))
            {
                rows.Add(PatchingBenchmarks.Run(ctx));
                rows.Add(BatchedPatchingBenchmarks.Run(ctx));
            }
            if (options.Runs("gradients")) Add(GradientBenchmarks.Run(ctx));
            if (options.Runs("generation")) Add(GenerationBenchmarks.Run(ctx));
            if (options.Runs("throughput")) Add(ThroughputBenchmarks.Run(ctx));
            if (options.Runs("memory")) rows.Add(MemoryBenchmarks.Run(ctx));
            if (options.Runs("harvest")) Add(HarvestBenchmarks.Run(ctx));
            if (options.Runs("sae")) Add(SaeBenchmarks.Run(ctx));
            if (options.Runs("load")) Add(LoadBenchmarks.Run(ctx));
            if (options.Runs("startup")) Add(StartupBenchmarks.Run(ctx));
            var machine = new MachineInfo(MachineInfo.CpuModel(), Environment.ProcessorCount, get_num_threads(),
                MachineInfo.MemoryTotalMb(), RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription,
                typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "?",
                loadStart, MachineInfo.LoadAverage(), started, Math.Round(clock.Elapsed.TotalSeconds, 1));
            return new BenchReport(ctx.ModelLabel, options.Quick,
                string.Join(",", options.Shapes.Select(s => $"{s.Batch}x{s.Pos}")), machine, rows);
        }
    }
}
