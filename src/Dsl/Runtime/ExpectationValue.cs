using System.Text.Json;
using Lens.Visualization;

namespace Lens.Dsl.Runtime;

/// <summary>
/// What an `expect` found: the claim (target, comparison, threshold, tolerance), the value the target
/// names (and <see cref="Shown"/>, its text as the result's table prints it), and whether the claim holds.
/// <see cref="Claim"/> reads as written: `induction L1H1 > 0.8`.
/// </summary>
public sealed record ExpectationValue(string Target, ExpectOperator Operator, double Threshold, double? Tolerance,
    double Actual, string Shown, bool Passed)
    : ResultValue, IExpectation
{
    public override string Kind => "expectation";

    public string Claim =>
        $"{Target} {Keywords.ExpectOperators.Text(Operator)} {Printer.Number(Threshold)}"
            + (Tolerance is { } t ? $" within {Printer.Number(t)}" : "");

    /// <summary>The failure as the run reports it: `expected induction L1H1 > 0.95, got 0.925` (the value as its table
    /// prints it).</summary>
    public string Failure => $"expected {Claim}, got {Shown}";

    /// <summary>Whether <paramref name="actual"/> satisfies the comparison (NaN satisfies none).</summary>
    public static bool Holds(double actual, ExpectOperator op, double threshold, double? tolerance) => op switch
    {
        ExpectOperator.Greater => actual > threshold,
        ExpectOperator.GreaterOrEqual => actual >= threshold,
        ExpectOperator.Less => actual < threshold,
        ExpectOperator.LessOrEqual => actual <= threshold,
        _ => Math.Abs(actual - threshold) <= (tolerance ?? 0),
    };

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("target", Target);
        json.WriteString("operator", Keywords.ExpectOperators.Text(Operator));
        json.WriteNumber("threshold", Threshold);
        if (Tolerance is { } t) json.WriteNumber("tolerance", t);
        else json.WriteNull("tolerance");
        json.WritePropertyName("value");
        Numbers.Write(json, Actual);
        json.WriteBoolean("passed", Passed);
    }

    protected override string Body() => Passed ? $"ok: {Target} = {Shown} (expected {Claim})" : $"FAILED: {Failure}";

    internal override void AddFigures(Report report) => report.AddText(Body());
}
