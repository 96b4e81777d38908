using System.Text;

namespace Lens.Dsl.Runtime;

/// <summary>
/// What one statement produced: the statement (its node, its text as written, its command word), the
/// value, and the interventions that were in force when it ran (as experiment text).
/// </summary>
public sealed record ExperimentResult(Statement Statement, string Text, string Command, ResultValue Value,
    IReadOnlyList<string> Interventions)
{
    /// <summary>The line the statement was written on (0 when it was built in code).</summary>
    public int Line => Statement.Span.Line;

    /// <summary>The result for the terminal: a heading naming the statement, then the value.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        text.Append(Line > 0 ? $"── line {Line}: {Text}" : $"── {Text}");
        if (Interventions.Count > 0) text.Append("   [with ").Append(string.Join("; ", Interventions)).Append(']');
        text.Append('\n').Append(Value.ToText().TrimEnd('\n')).Append('\n');
        return text.ToString();
    }
}
