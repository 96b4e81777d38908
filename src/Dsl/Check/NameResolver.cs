namespace Lens.Dsl;

/// <summary>
/// Resolves let-bound names once a statement has parsed: each name must be bound earlier in its block or an
/// enclosing one, to a value of the kind its place needs. Errors point at the name, with the words that may
/// also stand there as suggestions. The reader drives it statement by statement, so errors keep file order.
/// </summary>
internal sealed class NameResolver(string file, IReadOnlyList<string> lines)
{
    private Scope scope = new(null);
    private static readonly IReadOnlyList<string> SelectionWords = ["heads", "where"];
    private static readonly IReadOnlyList<string> LetWords = ["heads", "where", "input", "pattern"];
    private static readonly IReadOnlyList<string> AblationWords = ["heads", "where", "mlp", "attn", "neurons"];

    /// <summary>A block opens: its lets are its own.</summary>
    public void Enter() => scope = new Scope(scope);

    public void Exit() => scope = scope.Parent ?? throw new InvalidOperationException("no block to leave");

    /// <summary>Binds what a let binds, from the next statement on.</summary>
    public void Bind(Statement statement)
    {
        if (statement is LetStatement let) scope.Bind(let.Name, KindOf(let.Value));
    }

    /// <summary>Checks the names a statement (written at 0-based <paramref name="line"/>) uses.</summary>
    public void Check(Statement statement, int line)
    {
        switch (statement)
        {
            case DetectStatement { Pattern: PatternName p }:
                Use(line, p.Name, p.Position, BindingKind.Pattern, "detection pattern", Keywords.BuiltinPatterns.Words,
                    "expected previous_token, duplicate_token, induction or a name bound with "
                    + "'let NAME = pattern [[...]]'");
                break;
            case HeadsStatement s: Check(s.Selection, line, SelectionWords); break;
            case LetStatement { Value: SelectionValue v }: Check(v.Selection, line, LetWords); break;
            case LetStatement { Value: InputValue v }: Check(v.Source, line); break;
            case InterventionStatement { Intervention: Ablation { Target: HeadsTarget t } }:
                Check(t.Selection, line, AblationWords);
                break;
            case CircuitStatement s: Check(s.Heads, line, SelectionWords); break;
            case ComposeStatement s:
                Check(s.From, line, SelectionWords);
                Check(s.To, line, SelectionWords);
                break;
            case ShowStatement { View: PatternView v }: Check(v.Heads, line, SelectionWords); break;
            case InputStatement s: Check(s.Source, line); break;
            case PatchStatement s: Check(s.Source, line); break;
            case AttributePatchStatement s: Check(s.Source, line); break;
        }
    }

    private void Check(Selection selection, int line, IReadOnlyList<string> words)
    {
        switch (selection)
        {
            case SelectionName n:
                Use(line, n.Name, n.Position, BindingKind.Selection, "head selection", words,
                    "expected a head selector such as L1H4, 'where ...' or a name bound with 'let'");
                break;
            case SelectionUnion u:
                foreach (var part in u.Parts) Check(part, line, words);
                break;
            case SelectionExcept e:
                Check(e.Included, line, words);
                Check(e.Excluded, line, words);
                break;
        }
    }

    private void Check(InputSource source, int line)
    {
        if (source is InputName n)
            Use(line, n.Name, n.Position, BindingKind.Input, "input", Keywords.InputWords,
                "expected a string, 'repeat', 'tokens', 'file', 'dataset' or a name bound with 'let'");
    }

    /// <summary>Checks that a name read where a <paramref name="kind"/> is expected is bound to one.</summary>
    private void Use(int line, string name, NamePosition position, BindingKind kind, string what,
        IReadOnlyList<string> words, string otherwise)
    {
        var bound = scope.Lookup(name);
        if (bound == kind) return;
        var error = bound is { } other
            ? new SyntaxError(position.Index, $"'{name}' is {Scope.Describe(other)}, not {Scope.Describe(kind)}",
                [Scope.Describe(kind)])
            : Errors.UnknownWord(position.Index, what, name, [.. scope.Names(kind), .. words], otherwise);
        throw Errors.At(file, lines, line, error.Position, error.Problem, error.Expected);
    }

    private static BindingKind KindOf(LetValue value) => value switch
    {
        SelectionValue => BindingKind.Selection,
        InputValue => BindingKind.Input,
        _ => BindingKind.Pattern,
    };
}
