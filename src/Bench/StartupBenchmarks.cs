namespace Lens.Bench;

/// <summary>
/// Process start to exit of the <c>lens</c> command: <c>lens run</c> of a three-line experiment on the
/// embedded demo model (the target), and <c>lens --help</c> for the cost of starting .NET alone.
/// </summary>
public static class StartupBenchmarks
{
    const string Experiment = """
        model demo-attn-only-2l
        input repeat random 20 x2 seed 0
        score induction
        """;

    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"lens-bench-startup-{Environment.ProcessId}");
        try
        {
            Directory.CreateDirectory(dir);
            var file = Path.Combine(dir, "startup.lens");
            File.WriteAllText(file, Experiment + "\n");
            int reps = ctx.Options.Quick ? 3 : 7;
            ctx.Options.Progress("start-up: lens --help");
            yield return Time(ctx, "start-up to exit: lens --help (.NET start-up alone)", ["--help"], reps, null);
            ctx.Options.Progress("start-up: lens run, 3-line experiment on the demo model");
            yield return Time(ctx, "start-up to exit: lens run, 3-line experiment on demo-attn-only-2l", ["run", file],
                reps, Target.Value("<=", 1500));
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    static BenchRow Time(BenchContext ctx, string name, string[] args, int reps, Target? target)
    {
        var psi = ctx.Options.SelfCommand(args);
        var command = string.Join(' ',
            new[] { Path.GetFileName(psi.FileName) }.Concat(psi.ArgumentList.Select(Path.GetFileName)));
        var times = new List<double>();
        for (int i = 0; i <= reps; i++)
        {
            var (code, _, err, ms) = SelfInvocation.Run(ctx.Options.SelfCommand(args), TimeSpan.FromMinutes(2));
            if (code != 0) throw new InvalidOperationException($"{command} failed (exit {code}): {err.Trim()}");
            if (i > 0) times.Add(ms); // the first run warms the disk cache
        }
        return BenchRow.FromSamples(name, new Samples(times), "ms", null, null, target, $"measured as: {command}");
    }
}
