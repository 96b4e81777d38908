using System.Runtime.InteropServices;
using System.Text.Json;
using Lens.Native;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// Loading a checkpoint the size of the model (written by the bench with model.Save): load time
/// against reading the file once, both with the file already in the page cache, and the load's peak
/// resident memory measured in a child process (<c>lens bench --load-probe DIR</c>).
/// </summary>
public static class LoadBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"lens-bench-load-{Environment.ProcessId}");
        try
        {
            ctx.Options.Progress("writing the checkpoint for the load rows");
            var saveMs = Timing.Milliseconds(() => ctx.Model.Save(dir));
            var file = Path.Combine(dir, HookedTransformer.WeightsFile);
            long size = new FileInfo(file).Length;
            var label = $"{ProcessMemory.Mb(size):0} MB";
            ReadOnce(file); // into the page cache, so that both sides below read warm
            ctx.Options.Progress($"HookedTransformer.Load ({label}) vs reading the file");
            var once = Timing.Milliseconds(() => { using var m = HookedTransformer.Load(dir); });
            var (m, b, ratio) = Timing.Paired(() => { using var model = HookedTransformer.Load(dir); },
                () => ReadOnce(file), 1, ctx.Options.Repetitions(once, 3, 7));
            yield return BenchRow.FromSamples(
                $"HookedTransformer.Load of a {label} checkpoint, vs reading the file once (both warm in page cache)",
                m, "ms", b, ratio, Target.Ratio("<=", 2.0), $"model.Save took {saveMs:0} ms");
            yield return PeakMemory(ctx, dir, size, label);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>Reads the whole file into freshly allocated memory, as any loader must at least do.</summary>
    public static unsafe void ReadOnce(string path)
    {
        using var handle =
            File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        long length = RandomAccess.GetLength(handle);
        var buffer = (byte*)NativeMemory.Alloc((nuint)Math.Max(length, 1));
        try
        {
            long offset = 0;
            while (offset < length)
            {
                int chunk = (int)Math.Min(length - offset, 1 << 26);
                int read = RandomAccess.Read(handle, new Span<byte>(buffer + offset, chunk), offset);
                if (read <= 0) throw new IOException($"{path}: unexpected end of file at byte {offset}");
                offset += read;
            }
        }
        finally { NativeMemory.Free(buffer); }
    }

    static BenchRow PeakMemory(BenchContext ctx, string dir, long size, string label)
    {
        var name = $"HookedTransformer.Load peak resident memory (child process), vs file size";
        var target = Target.Ratio("<=", 1.3);
        if (!ProcessMemory.Available) return BenchRow.Skipped(name, "MB", target, "no /proc/self/status");
        ctx.Options.Progress("load probe (child process)");
        var peaks = new List<double>();
        double rawPeak = 0;
        for (int i = 0; i < (ctx.Options.Quick ? 1 : 3); i++)
        {
            var (code, stdout, stderr, _) =
                SelfInvocation.Run(ctx.Options.SelfCommand(["bench", "--load-probe", dir]), TimeSpan.FromMinutes(5));
            if (code != 0) throw new InvalidOperationException($"the load probe failed (exit {code}): {stderr.Trim()}");
            var probe = JsonSerializer.Deserialize<ProbeResult>(stdout.Trim().Split('\n')[^1])
                ?? throw new InvalidOperationException($"the load probe printed no result: {stdout}");
            peaks.Add(ProcessMemory.Mb(probe.PeakBytes - probe.BeforeBytes));
            rawPeak = ProcessMemory.Mb(probe.PeakBytes);
        }
        var s = new Samples(peaks);
        var mb = ProcessMemory.Mb(size);
        return new BenchRow(name, s.Median, s.Min, s.Max, "MB", mb, s.Median / mb, target,
            $"VmHWM − VmRSS before the load ({label} file); the child's whole VmHWM was {rawPeak:0} MB, runtime and " +
            $"libtorch included");
    }

    public sealed record ProbeResult(long BeforeBytes, long PeakBytes, double LoadMs, long Parameters);

    /// <summary>The child side: load the checkpoint once and print VmRSS before, VmHWM after, as one JSON
    /// line.</summary>
    public static int Probe(string dir)
    {
        TorchNative.EnsureLoaded();
        using (var warm = ones(8)) { using var _ = warm.sum(); } // libtorch initialised before the baseline sample
        ProcessMemory.Settle();
        var before = ProcessMemory.Resident();
        ProcessMemory.ResetPeak();
        HookedTransformer? model = null;
        var ms = Timing.Milliseconds(() => model = HookedTransformer.Load(dir));
        var peak = ProcessMemory.Peak();
        long parameters = model!.Parameters().Sum(p => p.Param.numel());
        model.Dispose();
        Console.WriteLine(JsonSerializer.Serialize(new ProbeResult(before, peak, ms, parameters)));
        return 0;
    }
}
