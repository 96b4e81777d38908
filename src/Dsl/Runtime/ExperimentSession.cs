namespace Lens.Dsl.Runtime;

/// <summary>
/// An experiment fed a few statements at a time (the REPL): the model stays loaded and the state carries
/// over. Each submission is parsed together with everything accepted before (so earlier `let` names are
/// known), its new statements are checked against the current state, then run one by one. A submission
/// that fails to parse or check changes nothing; one that fails while running keeps what ran before the
/// failing statement.
/// </summary>
public sealed class ExperimentSession(ExperimentEnvironment environment)
{
    string accepted = "";
    int statements;

    public ExperimentState State { get; private set; } = ExperimentState.Start(environment);

    /// <summary>Whether the text opens more blocks than it closes (outside strings and comments): read another
    /// line.</summary>
    public static bool IsIncomplete(string text) => OpenBlock(text) is not null;

    /// <summary>
    /// Whether to read another line before submitting <paramref name="text"/>: only while a block it opens is still
    /// open and nothing before that block is wrong. A `{` that cannot open a block (a stray one, or after a command
    /// that takes none) is submitted at once and reported, so it never swallows the lines after it.
    /// </summary>
    public bool NeedsMoreLines(string text)
    {
        if (OpenBlock(text) is not var (line, column)) return false;
        var before = accepted.Count(c => c == '\n');
        try
        {
            Parser.Parse(accepted + text, environment.FileName);
            return false;
        }
        catch (DslParseException e)
        {
            // The splitter reports an unclosed block at its '{'; any other error inside the open block waits for its
            // end too.
            if (e.Problem.StartsWith("this '{' is never closed", StringComparison.Ordinal)) return true;
            var at = (Line: e.Line - before - 1, Column: e.Column - 1);
            return at.Line > line || at.Line == line && at.Column > column;
        }
    }

    /// <summary>The 0-based (line, column) of the outermost `{` the text leaves open, outside strings and comments;
    /// null when none is.</summary>
    static (int Line, int Column)? OpenBlock(string text)
    {
        var open = new Stack<(int, int)>();
        int line = 0, column = -1;
        bool inString = false, escaped = false, comment = false;
        foreach (var c in text)
        {
            column++;
            if (c == '\n') { line++; column = -1; }
            if (comment) { if (c == '\n') comment = false; continue; }
            if (inString)
            {
                if (escaped) escaped = false;
                else if (c == '\\') escaped = true;
                else if (c == '"') inString = false;
                else if (c == '\n') inString = false;
                continue;
            }
            switch (c)
            {
                case '"': inString = true; break;
                case '#': comment = true; break;
                case '{': open.Push((line, column)); break;
                case '}': open.TryPop(out _); break;
            }
        }
        return open.Count > 0 ? open.Last() : null;
    }

    /// <summary>
    /// Parses, checks and runs <paramref name="text"/>; returns the results it produced. Throws
    /// <see cref="DslParseException"/>, <see cref="ExperimentCheckException"/> or <see cref="ExperimentRunException"/>.
    /// </summary>
    public IReadOnlyList<ExperimentResult> Submit(string text) => Submit(text, accepted.Count(c => c == '\n') + 1);

    /// <summary>
    /// As <see cref="Submit(string)"/>, with errors reported at the lines the user typed: the text's first line is
    /// line <paramref name="firstLine"/> of the session (lines that failed count too, though they are not kept).
    /// </summary>
    public IReadOnlyList<ExperimentResult> Submit(string text, int firstLine)
    {
        var candidate = accepted + text.TrimEnd('\n', '\r') + "\n";
        var acceptedLines = accepted.Count(c => c == '\n');
        int Moved(int line) => line <= acceptedLines ? line : line + firstLine - 1 - acceptedLines;
        Script script;
        try { script = Parser.Parse(candidate, environment.FileName); }
        catch (DslParseException e)
        {
            throw new DslParseException(e.File, Moved(e.Line), e.Column, e.SourceLine, e.Problem, e.Expected);
        }
        var added = script.Statements.Skip(statements).ToList();
        var before = environment.SourceText;
        environment.SourceText = candidate;
        var errors = Validator.Check(added, State);
        if (errors.Count > 0)
        {
            environment.SourceText = before;
            throw new ExperimentCheckException(errors.Select(e => e with { Line = Moved(e.Line) }).ToList());
        }
        int firstResult = State.Results.Count;
        try
        {
            foreach (var statement in added) State = StageRunner.Apply(statement, State);
        }
        catch (ExperimentRunException e)
        {
            throw new ExperimentRunException(e.Error with { Line = Moved(e.Error.Line) }, e.InnerException!);
        }
        accepted = candidate;
        statements = script.Statements.Count;
        return State.Results.Skip(firstResult).ToList();
    }
}
