using Sprache;

namespace Lens.Dsl;

/// <summary>
/// Drives parsing: takes statements from the splitter in file order, parses each header with the grammar,
/// nests blocks, and turns every failure into a <see cref="DslParseException"/> that points at the
/// offending token of the offending line.
/// </summary>
internal sealed class ScriptReader(string file, IReadOnlyList<string> lines)
{
    private readonly Grammar grammar = Grammar.Instance;
    private readonly NameResolver names = new(file, lines);

    public NodeList<Statement> Read()
    {
        using var events = new StatementSplitter(file, lines).Split().GetEnumerator();
        return Sequence(events, out _);
    }

    /// <summary>Statements up to the end of the file, or up to the `}` that closes the current block (returned in
    /// <paramref name="close"/>).</summary>
    private NodeList<Statement> Sequence(IEnumerator<SplitEvent> events, out BlockEndEvent? close)
    {
        var statements = new List<Statement>();
        while (events.MoveNext())
        {
            if (events.Current is BlockEndEvent end)
            {
                close = end;
                return NodeList.From(statements);
            }
            var header = (HeaderEvent)events.Current;
            var statement = ParseHeader(header);
            names.Check(statement, header.Line);
            var span = new SourceSpan(file, header.Line + 1, header.Start + 1, header.Line + 1, TrimmedEnd(header) + 1);
            if (header.OpensBlock)
            {
                if (statement is not InterventionStatement intervention)
                    throw Errors.At(file, lines, header.Line, header.End,
                        $"'{CommandWord(header)}' does not take a block; only 'ablate' does", ["end of statement"]);
                names.Enter();
                var body = Sequence(events, out var blockEnd);
                names.Exit();
                statement = intervention with { Body = body };
                span = span with { EndLine = blockEnd!.Line + 1, EndColumn = blockEnd.Index + 2 };
            }
            names.Bind(statement);
            statements.Add(statement with { Span = span });
        }
        close = null;
        return NodeList.From(statements);
    }

    private Statement ParseHeader(HeaderEvent header)
    {
        var line = lines[header.Line];
        // Blanking what precedes the statement keeps Sprache's positions equal to indices in the line.
        var text = new string(' ', header.Start) + line[header.Start..header.End];
        if (TooDeep(line, header.Start, header.End) is int deep)
            throw Errors.At(file, lines, header.Line, deep,
                $"brackets nested more than {Limits.NestingDepth} deep; the limit is {Limits.NestingDepth}",
                ["fewer nested brackets"]);
        try
        {
            var result = grammar.Parse(new Input(text));
            if (result.WasSuccessful) return result.Value;
            var expected = result.Expectations.Where(e => e.Length > 0).Distinct().ToList();
            CheckNamesBefore(header, result.Remainder.Position);
            var (at, found) = Locate(header, result.Remainder.Position);
            throw Errors.At(file, lines, header.Line, at, Errors.Expected(expected, SourceText.Describe(line, found)),
                expected);
        }
        catch (SyntaxError e)
        {
            CheckNamesBefore(header, e.Position);
            throw Errors.At(file, lines, header.Line, Locate(header, e.Position).At, e.Problem, e.Expected);
        }
        catch (ArgumentException e)
        {
            // A record refused its values (Ranges) where no token check came first: report it at the statement.
            throw Errors.At(file, lines, header.Line, header.Start, e.Message, []);
        }
    }

    /// <summary>
    /// Before a syntax error at <paramref name="position"/> is reported, a misspelt name before it is the likelier
    /// mistake (`ablate atn L1`): when the statement's text up to there parses, its names are checked first.
    /// </summary>
    private void CheckNamesBefore(HeaderEvent header, int position)
    {
        if (position <= header.Start || position > header.End) return;
        Statement? prefix;
        try
        {
            var result =
                grammar.Parse(new Input(new string(' ', header.Start) + lines[header.Line][header.Start..position]));
            prefix = result.WasSuccessful ? result.Value : null;
        }
        catch (Exception e) when (e is SyntaxError or ArgumentException or ParseException)
        {
            return;
        }
        if (prefix is not null) names.Check(prefix, header.Line);
    }

    /// <summary>The index of the first `(` or `[` (outside strings) that opens more than
    /// <see cref="Limits.NestingDepth"/> brackets at once, or null.</summary>
    private static int? TooDeep(string line, int start, int end)
    {
        var depth = 0;
        for (var p = start; p < end; p++)
        {
            switch (line[p])
            {
                case '"':
                    for (p++; p < end && line[p] != '"'; p++) if (line[p] == '\\') p++;
                    break;
                case '(' or '[':
                    if (++depth > Limits.NestingDepth) return p;
                    break;
                case ')' or ']':
                    depth = Math.Max(0, depth - 1);
                    break;
            }
        }
        return null;
    }

    /// <summary>
    /// Where to put the caret for an error at <paramref name="position"/>: on the next token, or, when the statement
    /// has no more tokens, on what ends it (`;`, a brace) or just past its text (before a comment or the line end).
    /// Also where to look for what was found instead.
    /// </summary>
    private (int At, int Found) Locate(HeaderEvent header, int position)
    {
        var line = lines[header.Line];
        var p = Math.Max(position, header.Start);
        while (p < header.End && SourceText.IsSpace(line[p])) p++;
        if (p < header.End) return (p, p);
        if (header.End < line.Length && line[header.End] is ';' or '{' or '}') return (header.End, header.End);
        return (TrimmedEnd(header), header.End);
    }

    private int TrimmedEnd(HeaderEvent header) =>
        Math.Max(header.Start, lines[header.Line][..header.End].TrimEnd().Length);

    private string CommandWord(HeaderEvent header) =>
        string.Concat(lines[header.Line][header.Start..header.End].TakeWhile(SourceText.IsWordChar));
}
