namespace Lens.Bench;

/// <summary>
/// Process start to exit of the <c>lens</c> command. Stand-in until <c>lens run</c> lands: <c>lens --help</c>
/// and <c>lens cache</c> of a tiny model (both include starting .NET and loading libtorch).
/// </summary>
public static class StartupBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"lens-bench-startup-{Environment.ProcessId}");
        try
        {
            using (var tiny = BenchModels.Build(BenchModels.Tiny())) tiny.Save(dir);
            var output = Path.Combine(dir, "acts.safetensors");
            int reps = ctx.Options.Quick ? 3 : 5;
            ctx.Options.Progress("start-up: lens --help");
            yield return Time(ctx, "start-up to exit: lens --help (stand-in for lens run)", ["--help"], reps);
            ctx.Options.Progress("start-up: lens cache on a tiny model");
            yield return Time(ctx, "start-up to exit: lens cache, tiny model, 4 tokens (stand-in for lens run)",
                ["cache", dir, "--tokens", "[[1,2,3,4]]", "--out", output], reps);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    static BenchRow Time(BenchContext ctx, string name, string[] args, int reps)
    {
        var psi = ctx.Options.SelfCommand(args);
        var command = string.Join(' ', new[] { Path.GetFileName(psi.FileName) }.Concat(psi.ArgumentList.Select(Path.GetFileName)));
        var times = new List<double>();
        for (int i = 0; i <= reps; i++)
        {
            var (code, _, err, ms) = SelfInvocation.Run(ctx.Options.SelfCommand(args), TimeSpan.FromMinutes(2));
            if (code != 0) throw new InvalidOperationException($"{command} failed (exit {code}): {err.Trim()}");
            if (i > 0) times.Add(ms); // the first run warms the disk cache
        }
        return BenchRow.FromSamples(name, new Samples(times), "ms", null, null, Target.Value("<=", 1500), $"measured as: {command}");
    }
}
