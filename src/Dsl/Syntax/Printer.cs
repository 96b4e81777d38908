using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Lens.Dsl;

/// <summary>
/// Canonical text of the AST: parsing what it prints gives back an equal AST. One statement per line,
/// blocks indented by two spaces, defaults left out (zero ablation, mul error), paths bare when they can be.
/// The records refuse at construction what the language cannot write (an empty list, a union of one part, a
/// negative index); the printer refuses only what it is given to print by name: a name reference that no `let`
/// could bind, and a number that is not finite, since printing them would not round-trip.
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
        ScoreFilter s => "where " + string.Join(" and ", s.Conditions.Select(Print)),
        SelectionName s => Name(s.Name),
        SelectionUnion s => string.Join(", ",
            s.Parts.Select(p => p is SelectionUnion or SelectionExcept ? "(" + Print(p) + ")" : Print(p))),
        // `except` is left-associative and binds looser than `,`: only a difference on the right needs parentheses.
        SelectionExcept s => Print(s.Included) + " except "
            + (s.Excluded is SelectionExcept ? "(" + Print(s.Excluded) + ")" : Print(s.Excluded)),
        _ => throw new ArgumentException($"cannot print {selection.GetType().Name}"),
    };

    public static string Print(ScoreCondition condition) =>
        Keywords.ScoreKinds.Text(condition.Score) + " " + Keywords.Comparisons.Text(condition.Comparison) + " "
            + Number(condition.Threshold);

    public static string Print(InputSource source) => source switch
    {
        TextInput s => string.Join(", ", s.Texts.Select(Quote)),
        TokenInput s => "tokens " + TokenRows(s.Rows),
        FileInput s => "file " + Path(s.Path),
        DatasetInput s => "dataset " + Path(s.Path) + " rows " + Int(s.FirstRow)
            + (s.Rows == 1 ? "" : ".." + Int(s.FirstRow + s.Rows)),
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
        PatternValue v => "pattern ["
            + string.Join(", ", v.Rows.Select(row => "[" + string.Join(", ", row.Select(Number)) + "]")) + "]",
        _ => throw new ArgumentException($"cannot print {value.GetType().Name}"),
    };

    public static string Print(DetectPattern pattern) => pattern switch
    {
        BuiltinPattern p => Keywords.BuiltinPatterns.Text(p.Kind),
        PatternName p => Name(p.Name),
        _ => throw new ArgumentException($"cannot print {pattern.GetType().Name}"),
    };

    public static string Print(Intervention intervention) => intervention switch
    {
        Ablation a => "ablate " + Print(a.Target)
            + (a.Mode == AblationMode.Zero ? "" : " " + Keywords.AblationModes.Text(a.Mode)),
        _ => throw new ArgumentException($"cannot print {intervention.GetType().Name}"),
    };

    public static string Print(InterventionTarget target) => target switch
    {
        HeadsTarget t => Print(t.Selection),
        MlpTarget t => "mlp L" + Int(t.Layer),
        AttnTarget t => "attn L" + Int(t.Layer),
        NeuronsTarget t => "neurons mlp L" + Int(t.Layer) + " " + string.Join(",", t.Neurons.Select(n => "N" + Int(n))),
        FeatureTarget t => "feature " + Int(t.Feature),
        _ => throw new ArgumentException($"cannot print {target.GetType().Name}"),
    };

    public static string Print(TokenRef token) => token switch
    {
        TokenText t => Quote(t.Text),
        TokenId t => Int(t.Id),
        _ => throw new ArgumentException($"cannot print {token.GetType().Name}"),
    };

    public static string Print(LogitTarget target) =>
        "to " + Print(target.Token) + (target.Versus is { } v ? " vs " + Print(v) : "");

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

    /// <summary>An expectation's target: its words, bare when they are runs of letters, digits and underscores, quoted
    /// otherwise.</summary>
    public static string Print(ExpectTarget target) =>
        string.Join(" ", target.Words.Select(w =>
            BareTargetWordRegex().IsMatch(w) && !Keywords.TextComparisons.TryParse(w, out _) ? w : Quote(w)));

    public static string Print(PrintSubject subject) => subject switch
    {
        PrintName s => s.Name,
        PrintHook s => Print(s.Hook),
        _ => throw new ArgumentException($"cannot print {subject.GetType().Name}"),
    };

    public static string Print(HookRef hook) => hook switch
    {
        FullHookName h => h.Name,
        HookShorthand h => h.Name + " " + Int(h.Layer) + (h.LayerType is { } type ? " " + type : ""),
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
    internal static string Path(string path) => BarePathRegex().IsMatch(path) ? path : Quote(path);

    internal static string Name(string name) =>
        Keywords.IsValidName(name)
            ? name
            : throw new ArgumentException($"'{name}' is not a valid name (an identifier, not reserved, not like L1)");

    private static string Index(int? index) => index is { } i ? Int(i) : "*";

    internal static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^[A-Za-z0-9_./\-~:+@%=*]+$")]
    private static partial Regex BarePathRegex();

    [GeneratedRegex(@"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")]
    private static partial Regex BareTargetWordRegex();
}
