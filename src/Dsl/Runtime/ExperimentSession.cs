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

    /// <summary>Whether the text opens more blocks than it closes (outside strings and comments): read another line.</summary>
    public static bool IsIncomplete(string text)
    {
        int depth = 0;
        bool inString = false, escaped = false, comment = false;
        foreach (var c in text)
        {
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
                case '{': depth++; break;
                case '}': depth--; break;
            }
        }
        return depth > 0;
    }

    /// <summary>
    /// Parses, checks and runs <paramref name="text"/>; returns the results it produced. Throws
    /// <see cref="DslParseException"/>, <see cref="ExperimentCheckException"/> or <see cref="ExperimentRunException"/>.
    /// </summary>
    public IReadOnlyList<ExperimentResult> Submit(string text)
    {
        var candidate = accepted + text.TrimEnd('\n', '\r') + "\n";
        var script = Parser.Parse(candidate, environment.FileName);
        var added = script.Statements.Skip(statements).ToList();
        var before = environment.SourceText;
        environment.SourceText = candidate;
        var errors = Validator.Check(added, State);
        if (errors.Count > 0)
        {
            environment.SourceText = before;
            throw new ExperimentCheckException(errors);
        }
        int firstResult = State.Results.Count;
        foreach (var statement in added) State = StageRunner.Apply(statement, State);
        accepted = candidate;
        statements = script.Statements.Count;
        return State.Results.Skip(firstResult).ToList();
    }
}
