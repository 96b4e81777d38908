using System.Text.Json;
using Lens.Visualization;

namespace Lens.Dsl.Runtime;

/// <summary>
/// What a text `expect` found (`expect generated contains " the"`): the claim, the text the target names,
/// and whether it holds. In the record: operator `contains` or `equals`, the text as threshold, the text read as value.
/// </summary>
public sealed record TextExpectationValue(string Target, TextComparison Operator, string Expected, string Actual,
    bool Passed)
    : ResultValue, IExpectation
{
    public override string Kind => "expectation";

    public string Claim => $"{Target} {Keywords.TextComparisons.Text(Operator)} {Printer.Quote(Expected)}";

    public string Failure => $"expected {Claim}, got {Printer.Quote(Actual)}";

    public static bool Holds(string actual, TextComparison op, string expected) =>
        op == TextComparison.Contains ? actual.Contains(expected, StringComparison.Ordinal) : actual == expected;

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("target", Target);
        json.WriteString("operator", Keywords.TextComparisons.Text(Operator));
        json.WriteString("threshold", Expected);
        json.WriteNull("tolerance");
        json.WriteString("value", Actual);
        json.WriteBoolean("passed", Passed);
    }

    protected override string Body() =>
        Passed ? $"ok: {Target} = {Printer.Quote(Actual)} (expected {Claim})" : $"FAILED: {Failure}";

    internal override void AddFigures(Report report) => report.AddText(Body());
}

/// <summary>An expectation's verdict, numeric or text: what the run counts and reports.</summary>
public interface IExpectation
{
    bool Passed { get; }

    /// <summary>`expected TARGET OP VALUE, got ACTUAL`.</summary>
    string Failure { get; }
}
