using System.Text;

namespace Lens.Dsl.Runtime;

/// <summary>
/// A mistake found before or while running an experiment, at a place in its text. Reads like a parse
/// error: <c>FILE:LINE:COLUMN: PROBLEM</c>, the source line, and a caret under the column. A statement
/// built in code (no location) is named by its text instead.
/// </summary>
public sealed record SemanticError(string File, int Line, int Column, string? SourceLine, string Statement,
    string Problem)
{
    /// <summary>The error at <paramref name="statement"/>, pointing at <paramref name="near"/> (some text of the
    /// statement) when it can find it.</summary>
    public static SemanticError At(ExperimentEnvironment environment, Statement statement, string problem,
        string? near = null)
    {
        var span = statement.Span;
        var text = environment.TextOf(statement);
        if (span.Line <= 0) return new SemanticError(environment.FileName, 0, 0, null, text, problem);
        var line = environment.Line(span.Line);
        int column = span.Column;
        if (line is not null && near is not null && span.Column - 1 <= line.Length)
        {
            int end = span.Line == span.EndLine ? Math.Min(line.Length, span.EndColumn - 1) : line.Length;
            int found =
                line.IndexOf(near, span.Column - 1, Math.Max(0, end - (span.Column - 1)), StringComparison.Ordinal);
            if (found >= 0) column = found + 1;
        }
        return new SemanticError(span.File.Length > 0 ? span.File : environment.FileName, span.Line, column, line, text,
            problem);
    }

    public override string ToString() => TerminalText.Visible(Text());

    string Text()
    {
        if (Line <= 0) return $"{File}: in `{Statement}`: {Problem}";
        if (SourceLine is null) return $"{File}:{Line}:{Column}: {Problem}";
        var caret = new StringBuilder();
        for (var i = 0; i < Column - 1 && i < SourceLine.Length; i++) caret.Append(SourceLine[i] == '\t' ? '\t' : ' ');
        return $"{File}:{Line}:{Column}: {Problem}\n  {SourceLine}\n  {caret}^";
    }
}

/// <summary>The checks before running found mistakes; nothing ran. The message lists every one.</summary>
public sealed class ExperimentCheckException(IReadOnlyList<SemanticError> errors)
    : Exception(string.Join("\n", errors.Select(e => e.ToString())))
{
    public IReadOnlyList<SemanticError> Errors { get; } = errors;
}

/// <summary>A statement failed while running (after the checks passed); the message names where.</summary>
public sealed class ExperimentRunException(SemanticError error, Exception inner) : Exception(error.ToString(), inner)
{
    public SemanticError Error { get; } = error;
}
