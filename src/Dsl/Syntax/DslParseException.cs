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
public sealed class DslParseException : Exception
{
    public DslParseException(string file, int line, int column, string sourceLine, string problem, IReadOnlyList<string> expected)
        : base(Format(file, line, column, sourceLine, problem))
    {
        File = file;
        Line = line;
        Column = column;
        SourceLine = sourceLine;
        Problem = problem;
        Expected = expected;
    }

    public string File { get; }

    /// <summary>1-based.</summary>
    public int Line { get; }

    /// <summary>1-based, in characters (a tab is one).</summary>
    public int Column { get; }

    /// <summary>The text of the offending line, without its line break.</summary>
    public string SourceLine { get; }

    /// <summary>What is wrong, in one sentence (the first line of the message, after the location).</summary>
    public string Problem { get; }

    /// <summary>What the parser would have accepted at this point, in plain words.</summary>
    public IReadOnlyList<string> Expected { get; }

    private static string Format(string file, int line, int column, string sourceLine, string problem)
    {
        var caret = new StringBuilder();
        for (var i = 0; i < column - 1 && i < sourceLine.Length; i++) caret.Append(sourceLine[i] == '\t' ? '\t' : ' ');
        caret.Append(' ', Math.Max(0, column - 1 - sourceLine.Length));
        return TerminalText.Visible($"{file}:{line}:{column}: {problem}\n  {sourceLine}\n  {caret}^");
    }
}
