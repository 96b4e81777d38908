using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Lens.Bench;

/// <summary>The machine a run was measured on.</summary>
public sealed record MachineInfo(string Cpu, int Nproc, int TorchThreads, long MemoryMb, string Os, string Dotnet,
    string TorchSharp, string LoadAverageStart, string LoadAverageEnd, DateTime StartedUtc, double Seconds)
{
    public static string CpuModel() =>
        File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo")
                .FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
                ?? "unknown"
            : RuntimeInformation.ProcessArchitecture.ToString();

    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    public static long MemoryTotalMb() =>
        File.Exists("/proc/meminfo")
            ? long.Parse(File.ReadLines("/proc/meminfo")
                .First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))["MemTotal:".Length..].Trim()
                .Split(' ')[0], CultureInfo.InvariantCulture) / 1024
            : 0;
}

/// <summary>A bench run's rows and machine, as printed and as written to JSON.</summary>
public sealed record BenchReport(string Model, bool Quick, string Shapes, MachineInfo Machine,
    IReadOnlyList<BenchRow> Rows)
{
    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>{ model, quick, shapes, machine, rows: [{ name, median, min, max, unit, baseline, ratio, target, met,
    /// note }] }.</summary>
    public string ToJson() => JsonSerializer.Serialize(new
    {
        model = Model,
        quick = Quick,
        shapes = Shapes,
        machine = Machine,
        rows = Rows.Select(r => new
        {
            name = r.Name, median = Round(r.Median), min = Round(r.Min), max = Round(r.Max), unit = r.Unit,
            baseline = Round(r.Baseline), ratio = Round(r.Ratio), target = r.Target?.Describe(r.Unit), met = r.Met,
            note = r.Note,
        }),
    }, Json);

    static double? Round(double? v) => v is double d ? Math.Round(d, d is > -10 and < 10 ? 4 : 2) : null;

    public IEnumerable<string[]> TableRows() => Rows.Select(r => new[]
    {
        r.Name, Format(r.Median), Format(r.Min), Format(r.Max), r.Unit, Format(r.Baseline),
        r.Ratio is double x ? x.ToString("0.000", CultureInfo.InvariantCulture) : "",
        r.Target?.Describe(r.Unit) ?? "",
        r.Met switch { true => "met", false => "MISSED", null => r.Median is null ? "skipped" : "" },
    });

    public static readonly string[] TableHeader =
        ["row", "median", "min", "max", "unit", "baseline", "ratio", "target", ""];

    static string Format(double? v) => v switch
    {
        null => "",
        double d when Math.Abs(d) >= 1000 => d.ToString("0", CultureInfo.InvariantCulture),
        double d when Math.Abs(d) >= 10 => d.ToString("0.0", CultureInfo.InvariantCulture),
        double d => d.ToString("0.00#", CultureInfo.InvariantCulture),
    };
}
