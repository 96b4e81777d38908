using System.Diagnostics;

namespace Lens.Bench;

/// <summary>What <c>lens bench</c> measures and how long it may take.</summary>
public sealed record BenchOptions
{
    public static readonly string[] Groups = ["forward", "hooks", "cache", "patching", "gradients", "generation",
        "load", "startup", "throughput", "memory", "harvest", "sae"];

    /// <summary>A model name for <see cref="ModelLoader.Load"/>; null: random weights at GPT-2 small's shape.</summary>
    public string? Model { get; init; }

    /// <summary>Forward shapes (batch, positions); the first is used for the hook and cache rows.</summary>
    public IReadOnlyList<(long Batch, long Pos)> Shapes { get; init; } = [(1, 128), (8, 128), (1, 1024)];

    /// <summary>CI-sized: fewer repetitions, shorter generation and memory loops.</summary>
    public bool Quick { get; init; }

    /// <summary>Only these groups (see <see cref="Groups"/>); null: all.</summary>
    public IReadOnlySet<string>? Only { get; init; }

    /// <summary>How to start this program again with other arguments (for the load probe and start-up
    /// timing).</summary>
    public Func<IEnumerable<string>, ProcessStartInfo> SelfCommand { get; init; } = SelfInvocation.StartInfo;

    /// <summary>Where progress lines go (not the report).</summary>
    public Action<string> Progress { get; init; } = _ => { };

    public bool Runs(string group) => Only is null || Only.Contains(group);

    /// <summary>Seconds a paired row aims to spend; repetitions follow from the cost of one run.</summary>
    public double RowBudgetSeconds => Quick ? 2.5 : 8;

    public int Repetitions(double msPerRun, int min = 3, int max = 15)
    {
        var reps = (int)(RowBudgetSeconds * 1000 / Math.Max(msPerRun, 1e-3) / 2);
        return Math.Clamp(reps, min, Quick ? Math.Min(max, 7) : max);
    }

    /// <summary>Parses "1x128,8x128,1x1024".</summary>
    public static IReadOnlyList<(long, long)> ParseShapes(string text)
    {
        var shapes = new List<(long, long)>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var bits = part.Split('x', 'X');
            if (bits.Length != 2 || !long.TryParse(bits[0], out var b) || !long.TryParse(bits[1], out var p) || b < 1
                || p < 1)
                throw new ArgumentException($"bad shape '{part}': expected BATCHxPOSITIONS, e.g. 8x128");
            shapes.Add((b, p));
        }
        if (shapes.Count == 0) throw new ArgumentException("no shapes given: expected e.g. 1x128,8x128");
        return shapes;
    }
}

/// <summary>Starts this program (the <c>lens</c> command) again, whether it runs as <c>dotnet lens.dll</c> or as an
/// apphost.</summary>
public static class SelfInvocation
{
    public static ProcessStartInfo StartInfo(IEnumerable<string> args)
    {
        var host =
            Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell which program is running");
        var psi = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false
        };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
            psi.ArgumentList.Add(System.Reflection.Assembly.GetEntryAssembly()?.Location
                ?? throw new InvalidOperationException("cannot tell which assembly to start"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Runs to exit; returns (exit code, stdout, stderr, wall milliseconds).</summary>
    public static (int Code, string Out, string Err, double Ms) Run(ProcessStartInfo psi, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{psi.FileName} {string.Join(' ', psi.ArgumentList)} did not finish " +
                $"within {timeout.TotalSeconds:0} s");
        }
        p.WaitForExit();
        var ms = sw.Elapsed.TotalMilliseconds;
        return (p.ExitCode, stdout.Result, stderr.Result, ms);
    }
}
