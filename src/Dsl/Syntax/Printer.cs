using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Lens.Dsl;

/// <summary>
/// Canonical text of the AST: parsing what it prints gives back an equal AST. One statement per line,
/// blocks indented by two spaces, defaults left out (zero ablation, mul error), paths bare when they can be.
/// Throws <see cref="ArgumentException"/> for a node the language cannot express (an empty list, a
/// union of one part, a name that is not an identifier), since printing it would not round-trip.
/// </summary>
public static partial class Printer
{
    public static string Print(Script script) => string.Concat(script.Statements.Select(s => Print(s) + "\n"));

    public static string Print(Statement statement) => statement.Canonical("");

    internal static string Block(NodeList<Statement>? body, string indent)
    {
        if (body is null) return "";
        var inner = indent + "  ";
        var text = new StringBuilder(" {\n");
        foreach (var statement in body) text.Append(inner).Append(statement.Canonical(inner)).Append('\n');
        return text.Append(indent).Append('}').ToString();
    }

    internal static string TopOption(int? top) => top is { } n ? " top " + Int(n) : "";

    public static string Print(Selection selection) => selection switch
    {
        HeadSelector s => "L" + Index(s.Layer) + "H" + Index(s.Head),
        LayerSelector s => "L" + Index(s.Layer),
        ScoreFilter s => "where " + string.Join(" and ", NotEmpty(s.Conditions, "a score filter").Select(Print)),
        SelectionName s => Name(s.Name),
        SelectionUnion s => string.Join(", ", Require(s.Parts, s.Parts.Count >= 2, "a selection union needs at least two parts")
            .Select(p => p is SelectionUnion or SelectionExcept ? "(" + Print(p) + ")" : Print(p))),
        // `except` is left-associative and binds looser than `,`: only a difference on the right needs parentheses.
        SelectionExcept s => Print(s.Included) + " except " + (s.Excluded is SelectionExcept ? "(" + Print(s.Excluded) + ")" : Print(s.Excluded)),
        _ => throw new ArgumentException($"cannot print {selection.GetType().Name}"),
    };

    public static string Print(ScoreCondition condition) =>
        Keywords.ScoreKinds.Text(condition.Score) + " " + Keywords.Comparisons.Text(condition.Comparison) + " " + Number(condition.Threshold);

    public static string Print(InputSource source) => source switch
    {
        TextInput s => string.Join(", ", NotEmpty(s.Texts, "a text input").Select(Quote)),
        TokenInput s => "tokens " + TokenRows(s.Rows),
        FileInput s => "file " + Path(s.Path),
        DatasetInput s => "dataset " + Path(s.Path) + " rows " + Int(Require(s.FirstRow, s.FirstRow >= 0, "the first row must be at least 0"))
                          + (Require(s.Rows, s.Rows >= 1, "a dataset input takes at least one row") == 1 ? "" : ".." + Int(s.FirstRow + s.Rows)),
        RepeatRandomInput s => "repeat random " + Int(s.Length) + " x" + Int(s.Repeats) + " batch " + Int(s.Batch)
                               + (s.Seed is { } seed ? " seed " + Int(seed) : ""),
        InputName s => Name(s.Name),
        _ => throw new ArgumentException($"cannot print {source.GetType().Name}"),
    };

    private static string TokenRows(NodeList<NodeList<int>> rows)
    {
        string Row(NodeList<int> row) => "[" + string.Join(", ", row.Select(id => Int(id))) + "]";
        return rows.Count == 1 ? Row(rows[0]) : "[" + string.Join(", ", rows.Select(Row)) + "]";
    }

    public static string Print(LetValue value) => value switch
    {
        SelectionValue v => "heads " + Print(v.Selection),
        InputValue v => "input " + Print(v.Source),
        PatternValue v => "pattern [" + string.Join(", ", NotEmpty(v.Rows, "a pattern").Select(row =>
            "[" + string.Join(", ", Require(row, row.Count == v.Rows.Count, "a pattern must be square").Select(Number)) + "]")) + "]",
        _ => throw new ArgumentException($"cannot print {value.GetType().Name}"),
    };

    public static string Print(DetectPattern pattern) => pattern switch
    {
        BuiltinPattern p => Keywords.BuiltinPatterns.Text(p.Kind),
        PatternName p => Keywords.BuiltinPatterns.TryParse(p.Name, out _)
            ? throw new ArgumentException($"'{p.Name}' is a built-in detection pattern, not a name")
            : Name(p.Name),
        _ => throw new ArgumentException($"cannot print {pattern.GetType().Name}"),
    };

    public static string Print(Intervention intervention) => intervention switch
    {
        Ablation a => "ablate " + Print(a.Target) + (a.Mode == AblationMode.Zero ? "" : " " + Keywords.AblationModes.Text(a.Mode)),
        _ => throw new ArgumentException($"cannot print {intervention.GetType().Name}"),
    };

    public static string Print(InterventionTarget target) => target switch
    {
        HeadsTarget t => Print(t.Selection),
        MlpTarget t => "mlp L" + Int(Require(t.Layer, t.Layer >= 0, "a layer must not be negative")),
        AttnTarget t => "attn L" + Int(Require(t.Layer, t.Layer >= 0, "a layer must not be negative")),
        NeuronsTarget t => "neurons mlp L" + Int(Require(t.Layer, t.Layer >= 0, "a layer must not be negative")) + " "
                           + string.Join(",", NotEmpty(t.Neurons, "a neuron list").Select(n => "N" + Int(Require(n, n >= 0, "a neuron must not be negative")))),
        FeatureTarget t => "feature " + Int(t.Feature),
        _ => throw new ArgumentException($"cannot print {target.GetType().Name}"),
    };

    public static string Print(TokenRef token) => token switch
    {
        TokenText t => Quote(t.Text),
        TokenId t => Int(t.Id),
        _ => throw new ArgumentException($"cannot print {token.GetType().Name}"),
    };

    public static string Print(LogitTarget target) => "to " + Print(target.Token) + (target.Versus is { } v ? " vs " + Print(v) : "");

    public static string Print(Metric metric) => metric switch
    {
        LogitDiffMetric m => "logit_diff " + Print(m.Correct) + " " + Print(m.Incorrect),
        LossMetric => "loss",
        ProbMetric m => "prob " + Print(m.Token),
        _ => throw new ArgumentException($"cannot print {metric.GetType().Name}"),
    };

    public static string Print(View view) => view switch
    {
        PatternView v => "pattern " + Print(v.Heads),
        ScoresView v => "scores" + (v.Score is { } k ? " " + Keywords.ScoreKinds.Text(k) : ""),
        TokensView => "tokens",
        _ => throw new ArgumentException($"cannot print {view.GetType().Name}"),
    };

    /// <summary>An expectation's target: its words, bare when they are runs of letters, digits and underscores, quoted otherwise.</summary>
    public static string Print(ExpectTarget target)
    {
        var words = NotEmpty(target.Words, "an expectation target");
        if (!Keywords.ExpectResults.Contains(words[0])) throw new ArgumentException($"'{words[0]}' is not a result an expectation can read");
        return string.Join(" ", words.Select(w => BareTargetWordRegex().IsMatch(w) && !Keywords.TextComparisons.TryParse(w, out _) ? w : Quote(w)));
    }

    public static string Print(PrintSubject subject) => subject switch
    {
        PrintName s => IsHookLike(s.Name) || !Keywords.IsIdentifier(s.Name)
            ? throw new ArgumentException($"'{s.Name}' is not a plain name (a name is an identifier not starting with hook_)")
            : s.Name,
        PrintHook s => Print(s.Hook),
        _ => throw new ArgumentException($"cannot print {subject.GetType().Name}"),
    };

    public static string Print(HookRef hook) => hook switch
    {
        FullHookName h => IsHookLike(h.Name) && Tokens.DottedNameRegex().IsMatch(h.Name)
            ? h.Name
            : throw new ArgumentException($"'{h.Name}' is not a full hook name (names joined by dots, or starting with hook_)"),
        HookShorthand h => (Keywords.IsIdentifier(h.Name) && !IsHookLike(h.Name)
                               ? h.Name
                               : throw new ArgumentException($"'{h.Name}' is not a hook shorthand name"))
                           + " " + Int(h.Layer)
                           + (h.LayerType is { } type
                               ? " " + (Keywords.IsIdentifier(type) ? type : throw new ArgumentException($"'{type}' is not a layer type"))
                               : ""),
        _ => throw new ArgumentException($"cannot print {hook.GetType().Name}"),
    };

    /// <summary>A number as the language writes it: shortest text that reads back as the same double.</summary>
    public static string Number(double value) =>
        double.IsFinite(value)
            ? value.ToString("R", CultureInfo.InvariantCulture)
            : throw new ArgumentException($"{value} cannot be written in an experiment");

    /// <summary>A string literal, escaping quotes, backslashes and control characters.</summary>
    public static string Quote(string text)
    {
        var quoted = new StringBuilder("\"");
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': quoted.Append("\\\""); break;
                case '\\': quoted.Append("\\\\"); break;
                case '\n': quoted.Append("\\n"); break;
                case '\t': quoted.Append("\\t"); break;
                case '\r': quoted.Append("\\r"); break;
                default:
                    if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\uFEFF')
                        quoted.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    else quoted.Append(c);
                    break;
            }
        }
        return quoted.Append('"').ToString();
    }

    /// <summary>A path bare when it is plainly one word, otherwise quoted.</summary>
    internal static string Path(string path) => BarePathRegex().IsMatch(NotEmpty(path, "a path")) ? path : Quote(path);

    internal static string Name(string name) =>
        Keywords.IsValidName(name) ? name : throw new ArgumentException($"'{name}' is not a valid name (an identifier, not reserved, not like L1)");

    private static bool IsHookLike(string name) => name.Contains('.') || name.StartsWith("hook_", StringComparison.Ordinal);

    private static string Index(int? index) => index is { } i ? Int(Require(i, i >= 0, "an index must not be negative")) : "*";

    internal static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static T Require<T>(T value, bool ok, string problem) => ok ? value : throw new ArgumentException(problem);

    internal static string NotEmpty(string text, string what) => text.Length > 0 ? text : throw new ArgumentException($"{what} must not be empty");

    private static NodeList<T> NotEmpty<T>(NodeList<T> list, string what) => list.Count > 0 ? list : throw new ArgumentException($"{what} must not be empty");

    [GeneratedRegex(@"^[A-Za-z0-9_./\-~:+@%=*]+$")]
    private static partial Regex BarePathRegex();

    [GeneratedRegex(@"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")]
    private static partial Regex BareTargetWordRegex();
}
