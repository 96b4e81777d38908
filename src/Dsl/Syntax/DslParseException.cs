using System.Text;

namespace Lens.Dsl;

/// <summary>
/// An experiment file that does not parse. The message reads
/// <code>
/// FILE:LINE:COLUMN: PROBLEM
///   the offending source line
///   ^ (under the column)
/// </code>
/// </summary>
/// <param name="line">1-based.</param>
/// <param name="column">1-based, in characters (a tab is one).</param>
/// <param name="sourceLine">The text of the offending line, without its line break.</param>
/// <param name="problem">What is wrong, in one sentence (the first line of the message, after the location).</param>
/// <param name="expected">What the parser would have accepted at this point, in plain words.</param>
public sealed class DslParseException(string file, int line, int column, string sourceLine, string problem,
    IReadOnlyList<string> expected)
    : Exception(Format(file, line, column, sourceLine, problem))
{
    public string File { get; } = file;

    public int Line { get; } = line;

    public int Column { get; } = column;

    public string SourceLine { get; } = sourceLine;

    public string Problem { get; } = problem;

    public IReadOnlyList<string> Expected { get; } = expected;

    private static string Format(string file, int line, int column, string sourceLine, string problem)
    {
        var caret = new StringBuilder();
        for (var i = 0; i < column - 1 && i < sourceLine.Length; i++) caret.Append(sourceLine[i] == '\t' ? '\t' : ' ');
        caret.Append(' ', Math.Max(0, column - 1 - sourceLine.Length));
        return TerminalText.Visible($"{file}:{line}:{column}: {problem}\n  {sourceLine}\n  {caret}^");
    }
}
