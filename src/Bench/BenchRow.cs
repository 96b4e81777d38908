namespace Lens.Bench;

/// <summary>
/// A target a row must meet: on its ratio to the baseline (<c>ratio &lt;= 1.05</c>) or on its own
/// median (<c>&lt;= 1500 ms</c>).
/// </summary>
public sealed record Target(bool OnRatio, string Op, double Limit)
{
    public static Target Ratio(string op, double limit) => new(true, op, limit);
    public static Target Value(string op, double limit) => new(false, op, limit);

    public bool? Met(double? value) => value is not double v || double.IsNaN(v) ? null : Op switch
    {
        "<=" => v <= Limit,
        "<" => v < Limit,
        ">=" => v >= Limit,
        ">" => v > Limit,
        "==" => v == Limit,
        _ => throw new InvalidOperationException($"unknown comparison '{Op}'"),
    };

    public string Describe(string unit) => OnRatio ? $"ratio {Op} {Limit:0.###}" : $"{Op} {Limit:0.###} {unit}";
}

/// <summary>
/// One line of the report: the median, min and max of the measured figure, the median of its
/// baseline measured in the same run, their ratio, and the target. A row whose measurement was
/// impossible for this model has a null median and says why in <see cref="Note"/>.
/// </summary>
public sealed record BenchRow(string Name, double? Median, double? Min, double? Max, string Unit,
    double? Baseline, double? Ratio, Target? Target, string? Note = null)
{
    public bool? Met => Target is null ? null : Target.Met(Target.OnRatio ? Ratio : Median);

    public static BenchRow FromSamples(string name, Samples measured, string unit, Samples? baseline, double? ratio,
        Target? target, string? note = null) =>
        new(name, measured.Median, measured.Min, measured.Max, unit, baseline?.Median, ratio, target, note);

    public static BenchRow Skipped(string name, string unit, Target? target, string why) =>
        new(name, null, null, null, unit, null, null, target, why);
}
