using System.CommandLine;
using Lens.Bench;

namespace Lens.Cli.Commands;

/// <summary><c>lens bench</c>: what hooks, caching, patching, generation and loading cost, against baselines measured
/// in the same run.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model")
        {
            Description = "a model name for ModelLoader (default: random weights at GPT-2 small's shape, no download)"
        };
        var shapes = new Option<string?>("--shape")
        {
            Description = "forward shapes BATCHxPOSITIONS, comma-separated (default 1x128,8x128,1x1024; --quick: 1x128)"
        };
        var json = new Option<string?>("--json") { Description = "also write the report as JSON to this file" };
        var quick = new Option<bool>("--quick") { Description = "CI-sized run: fewer repetitions, shorter loops" };
        var only = new Option<string[]>("--only")
        {
            Description = $"only these row groups: {string.Join(", ", BenchOptions.Groups)}",
            AllowMultipleArgumentsPerToken = true,
        };
        var threads = new Option<int?>("--threads")
        {
            Description = "torch intra-op threads for this run (default: Lens's choice, the usable cores)"
        };
        var loadProbe = new Option<string?>("--load-probe")
        {
            Description = "internal: load a checkpoint folder and print its peak memory (run by the bench in a child " +
                "process)", Hidden = true
        };
        var cmd = new Command("bench", """
            Measures Lens against baselines timed in the same run and prints a table (median, min, max,
            baseline, ratio, target): forward vs plain TorchSharp, no-op hooks, RunWithCache, a patching
            sweep, kv-cached generation, checkpoint loading, start-up, throughput vs the matmul ceiling,
            and memory over many forwards. Takes a few minutes on two cores (--quick: about one).
            Examples:
              lens bench
              lens bench --quick --json bench.json
              lens bench --model examples/models/tiny-gpt2 --shape 1x64 --only forward hooks
            """)
        { model, shapes, json, quick, only, threads, loadProbe };
        cmd.SetAction(r => r.GetValue(loadProbe) is string dir
            ? LoadBenchmarks.Probe(dir)
            : Run(r.GetValue(model), r.GetValue(shapes), r.GetValue(json), r.GetValue(quick), r.GetValue(only) ?? [],
                r.GetValue(threads)));
        return cmd;
    }

    static int Run(string? model, string? shapeText, string? jsonPath, bool quick, string[] only, int? threads)
    {
        if (threads is int n)
        {
            if (n < 1) throw new UsageException($"--threads must be at least 1 (got {n})");
            Lens.Native.TorchThreads.Configure();
            TorchSharp.torch.set_num_threads(n);
        }
        IReadOnlyList<(long, long)> shapes;
        try { shapes = BenchOptions.ParseShapes(shapeText ?? (quick ? "1x128" : "1x128,8x128,1x1024")); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        var unknown = only.Where(g => !BenchOptions.Groups.Contains(g)).ToList();
        if (unknown.Count > 0)
            throw new UsageException(
                $"unknown row group(s) {string.Join(", ", unknown)}; known: {string.Join(", ", BenchOptions.Groups)}");
        var options = new BenchOptions
        {
            Model = model, Shapes = shapes, Quick = quick, Only = only.Length > 0 ? only.ToHashSet() : null,
            Progress = line => Console.Error.WriteLine($"bench: {line}"),
        };
        var report = BenchRunner.Run(options);
        var m = report.Machine;
        Console.WriteLine($"lens bench: {report.Model}{(quick ? " (quick)" : "")} on {m.Cpu}, {m.Nproc} cores, torch " +
            $"threads {m.TorchThreads}, load average {m.LoadAverageStart} → {m.LoadAverageEnd}, {m.Seconds:0} s");
        Console.WriteLine(Tables.Render(BenchReport.TableHeader, report.TableRows()));
        var notes = report.Rows.Where(r => r.Note is not null).ToList();
        if (notes.Count > 0)
        {
            Console.WriteLine();
            foreach (var r in notes) Console.WriteLine($"  {r.Name}: {r.Note}");
        }
        if (jsonPath is not null)
        {
            Lens.IO.AtomicFile.WriteAllText(jsonPath, report.ToJson());
            Console.WriteLine($"wrote {jsonPath}");
        }
        return CliRunner.Ok;
    }
}
