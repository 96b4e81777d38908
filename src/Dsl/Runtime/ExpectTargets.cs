using System.Globalization;
using System.Text.RegularExpressions;

namespace Lens.Dsl.Runtime;

/// <summary>
/// What an `expect` target names: the key of the result it reads (the statement family that made it:
/// `induction`, `detect previous_token`, `loss`, `patch heads`, ...) and the cell in that result. The
/// checks use <see cref="Problem"/> before anything runs; a run reads the value with <see cref="Read"/>
/// from the most recent result with that key in scope (<see cref="ExperimentState.Latest"/>).
/// </summary>
public static partial class ExpectTargets
{
    static readonly string[] Qualified = ["detect", "patch", "compose", "circuit"];

    /// <summary>The columns of a `circuit` table an expectation can name, by the first word of the column.</summary>
    static readonly string[] CircuitColumns = ["copying", "positive", "largest", "rank", "diagonal"];

    static readonly string[] BlockComponents = ["resid_pre", "attn_out", "mlp_out"];

    /// <summary>The key under which a statement's result can be read by expectations (null: none can be).</summary>
    public static string? KeyOf(Statement statement) => statement switch
    {
        ScoreStatement s => Keywords.ScoreKinds.Text(s.Kind),
        DetectStatement s => "detect " + Printer.Print(s.Pattern),
        LossStatement => "loss",
        PredictStatement => "predict",
        AttributeStatement => "attribute",
        PatchStatement s => "patch " + Keywords.PatchTargets.Text(s.Target),
        ComposeStatement s => "compose " + Keywords.CompositionKinds.Text(s.Kind),
        CircuitStatement s => "circuit " + Keywords.CircuitKinds.Text(s.Kind),
        _ => null,
    };

    /// <summary>The result key a target reads and its cell words.</summary>
    public static (string Key, string[] Cell) Split(ExpectTarget target)
    {
        var words = target.Words;
        int qualifiers = Qualified.Contains(words[0]) ? 2 : 1;
        if (words.Count < qualifiers)
            throw new ArgumentException($"`expect {words[0]}` needs what it reads next, as in `expect {Example(words[0])} > 0.5`");
        return (string.Join(" ", words.Take(qualifiers)), words.Skip(qualifiers).ToArray());
    }

    /// <summary>The statement that makes results under a key, for messages ("run `score induction` first").</summary>
    public static string Producer(string key) => Keywords.ScoreKinds.TryParse(key, out _) ? "score " + key : key;

    /// <summary>
    /// Why a target cannot name a value (null: it can), with the word to point at. Checks the words against
    /// the result's shape, and heads, layers and positions against the model and the current input.
    /// </summary>
    public static (string Problem, string Near)? Problem(ExpectTarget target, int layers, int heads, int? positions, Func<string, bool> isPattern)
    {
        var words = target.Words;
        var first = words[0];
        if (Qualified.Contains(first))
        {
            if (words.Count < 2) return ($"`expect {first}` needs what it reads next, as in `expect {Example(first)} > 0.5`", first);
            var qualifier = words[1];
            var known = first switch
            {
                "detect" => Keywords.BuiltinPatterns.TryParse(qualifier, out _) || isPattern(qualifier),
                "patch" => Keywords.PatchTargets.TryParse(qualifier, out _),
                "compose" => Keywords.CompositionKinds.TryParse(qualifier, out _),
                _ => Keywords.CircuitKinds.TryParse(qualifier, out _),
            };
            if (!known)
            {
                IReadOnlyList<string> valid = first switch
                {
                    "detect" => Keywords.BuiltinPatterns.Words,
                    "patch" => Keywords.PatchTargets.Words,
                    "compose" => Keywords.CompositionKinds.Words,
                    _ => Keywords.CircuitKinds.Words,
                };
                var what = first switch { "detect" => "detection pattern", "patch" => "patch target", "compose" => "composition kind", _ => "circuit kind" };
                var hint = Suggest.DidYouMean(Suggest.Nearest(qualifier, valid)) ?? "expected " + Keywords.JoinOr(valid) + (first == "detect" ? " or a let-bound pattern" : "");
                return ($"unknown {what} '{qualifier}' in the expectation; {hint}", qualifier);
            }
        }
        var (key, cell) = Split(target);
        string? HeadProblem(string word)
        {
            if (HeadRegex().Match(word) is not { Success: true } m) return $"'{word}' is not a head: expected one such as L1H1";
            int l = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), h = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (l >= layers) return $"layer {l} is out of range: the model has {layers} layers (L0..L{layers - 1})";
            if (h >= heads) return $"head {h} is out of range: the model has {heads} heads per layer (H0..H{heads - 1})";
            return null;
        }
        string? LayerProblem(string word)
        {
            if (LayerRegex().Match(word) is not { Success: true } m) return $"'{word}' is not a layer: expected one such as L1";
            int l = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            return l >= layers ? $"layer {l} is out of range: the model has {layers} layers (L0..L{layers - 1})" : null;
        }
        string? PositionProblem(string[] pos)
        {
            if (pos.Length != 2 || pos[0] != "pos" || !int.TryParse(pos[1], NumberStyles.None, CultureInfo.InvariantCulture, out var p))
                return $"expected a position such as `pos 7` after the layer";
            return positions is int n && p >= n ? $"position {p} is out of range: the input has {n} tokens (pos 0..{n - 1})" : null;
        }
        (string, string)? At(string? problem, string near) => problem is null ? null : (problem, near);
        string Usage(string form) => $"`expect {key}` reads {form}";
        bool Baseline() => cell is ["clean"] or ["corrupted"];
        switch (key.Split(' ')[0])
        {
            case "induction" or "prev_token" or "duplicate_token" or "detect" or "attribute":
                if (cell.Length != 1) return (Usage(key == "attribute" ? "one head, as in `attribute L1H1`, or a component, as in `attribute embed`" : $"one head, as in `{key} L1H1`"), cell.Length > 0 ? cell[^1] : key.Split(' ')[^1]);
                if (key == "attribute" && !HeadRegex().IsMatch(cell[0]) && !LayerRegex().IsMatch(cell[0])) return null;   // a component, known when it runs
                return At(HeadProblem(cell[0]), cell[0]);
            case "loss":
                if (cell.Length == 0) return null;
                return cell is ["repeat", var k] && int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out var copy) && copy >= 1
                    ? null : (Usage("the mean loss (`loss`) or one copy's (`loss repeat 2`)"), cell[0]);
            case "predict":
                return cell is ["accuracy"] || cell is ["accuracy", "repeat", var c] && int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1
                    ? null : (Usage("`accuracy` or `accuracy repeat 2`"), cell.Length > 0 ? cell[0] : "predict");
            case "patch":
                if (Baseline()) return null;
                switch (key)
                {
                    case "patch heads":
                        if (cell.Length != 1) return (Usage("one head (`patch heads L1H0`), `clean` or `corrupted`"), cell.Length > 0 ? cell[0] : "heads");
                        return At(HeadProblem(cell[0]), cell[0]);
                    case "patch heads_by_pos":
                        if (cell.Length != 3) return (Usage("a head and a position (`patch heads_by_pos L1H0 pos 7`), `clean` or `corrupted`"), cell.Length > 0 ? cell[0] : "heads_by_pos");
                        return At(HeadProblem(cell[0]), cell[0]) ?? At(PositionProblem(cell[1..]), cell[1]);
                    case "patch blocks":
                        if (cell.Length != 4 || !BlockComponents.Contains(cell[0]))
                            return (Usage("a component, a layer and a position (`patch blocks attn_out L1 pos 7`), `clean` or `corrupted`"), cell.Length > 0 ? cell[0] : "blocks");
                        return At(LayerProblem(cell[1]), cell[1]) ?? At(PositionProblem(cell[2..]), cell[2]);
                    default:
                        if (cell.Length != 3) return (Usage($"a layer and a position (`{key} L1 pos 7`), `clean` or `corrupted`"), cell.Length > 0 ? cell[0] : key.Split(' ')[1]);
                        return At(LayerProblem(cell[0]), cell[0]) ?? At(PositionProblem(cell[1..]), cell[1]);
                }
            case "compose":
                if (cell.Length != 2) return (Usage($"a writing head and a reading head, as in `{key} L0H0 L1H1`"), cell.Length > 0 ? cell[0] : key.Split(' ')[1]);
                return At(HeadProblem(cell[0]), cell[0]) ?? At(HeadProblem(cell[1]), cell[1]);
            default:   // circuit
                if (cell.Length != 2 || !CircuitColumns.Contains(cell[1]))
                    return (Usage($"a head and a column ({Keywords.JoinOr(CircuitColumns)}), as in `{key} L1H1 copying`"), cell.Length > 1 ? cell[1] : key.Split(' ')[1]);
                return At(HeadProblem(cell[0]), cell[0]);
        }
    }

    /// <summary>
    /// The value a target names in a result, and its text as the result's own table prints it (a layer × head
    /// table with 3 decimals, other numbers as <see cref="Numbers.Text"/>); an error when the result does not hold it.
    /// </summary>
    public static (double Value, string Shown) Read(string key, string[] cell, ResultValue value)
    {
        var number = Number(key, cell, value);
        return (number, value is LayerHeadValue && cell is [var head] && HeadRegex().IsMatch(head)
            ? Lens.Visualization.LayerHeadTable.Format((float)number)
            : Numbers.Text(number));
    }

    static double Number(string key, string[] cell, ResultValue value)
    {
        switch (value)
        {
            case LayerHeadValue table when cell is [var head] && HeadRegex().Match(head) is { Success: true } m:
            {
                int l = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), h = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                if (l >= table.Layers || h >= table.Heads) throw new ArgumentException($"{head} is not in the {key} table ({table.Layers} layers × {table.Heads} heads)");
                return table[l, h];
            }
            case ScalarValue scalar when cell.Length == 0:
                return scalar.Value;
            case TensorValue tensor when cell.Length > 1:
                return TensorCell(key, cell, tensor);
            case MatrixValue matrix when cell is [var row, var column]:
            {
                int r = Array.IndexOf(matrix.RowLabels, row), c = Array.IndexOf(matrix.ColumnLabels, column);
                if (r < 0) throw new ArgumentException($"{row} is not a row of the {key} result (rows: {string.Join(", ", matrix.RowLabels)})");
                if (c < 0) throw new ArgumentException($"{column} is not a column of the {key} result (columns: {string.Join(", ", matrix.ColumnLabels)})");
                return matrix.Values[r][c];
            }
            case CircuitValue circuit when cell is [var head, var column]:
            {
                var table = circuit.Heads;
                int c = Array.FindIndex(table.Columns, name => name.Split(' ')[0] == column);
                var row = table.Rows.FirstOrDefault(r => r[0] as string == head);
                if (c < 0) throw new ArgumentException($"the {key} table has no '{column}' column (columns: {string.Join(", ", table.Columns.Skip(1))})");
                if (row is null) throw new ArgumentException($"{head} is not one of the heads of the {key} result ({string.Join(", ", table.Rows.Select(r => r[0]))})");
                return Convert.ToDouble(row[c], CultureInfo.InvariantCulture);
            }
        }
        // Everything else is a named number of the summary: `repeat 2`, `accuracy repeat 2`, `clean`, `embed`.
        var name = string.Join(" ", cell);
        foreach (var (summaryName, v) in value.Summary)
            if (summaryName.Replace(",", "") == name) return v;
        throw new ArgumentException(cell.Length == 0
            ? $"the {key} result is not one number: name a cell"
            : $"the {key} result has no '{name}'" + (value.Summary.Count > 0 ? $" (it has {string.Join(", ", value.Summary.Select(kv => kv.Key.Replace(",", "")))})" : ""));
    }

    static double TensorCell(string key, string[] cell, TensorValue tensor)
    {
        int? layer = null, head = null, pos = null;
        string? component = null;
        for (int i = 0; i < cell.Length; i++)
        {
            if (HeadRegex().Match(cell[i]) is { Success: true } h) { layer = int.Parse(h.Groups[1].Value, CultureInfo.InvariantCulture); head = int.Parse(h.Groups[2].Value, CultureInfo.InvariantCulture); }
            else if (LayerRegex().Match(cell[i]) is { Success: true } l) layer = int.Parse(l.Groups[1].Value, CultureInfo.InvariantCulture);
            else if (cell[i] == "pos" && i + 1 < cell.Length) pos = int.Parse(cell[++i], CultureInfo.InvariantCulture);
            else component = cell[i];
        }
        int offset = 0;
        for (int a = 0; a < tensor.Axes.Length; a++)
        {
            int index = tensor.Axes[a] switch
            {
                "layer" => layer ?? -1,
                "head" => head ?? -1,
                "pos" => pos ?? -1,
                _ => component is null ? -1 : Array.IndexOf(tensor.AxisLabels[a], component),
            };
            if (index < 0 || index >= tensor.Shape[a])
                throw new ArgumentException($"the {key} result has axes {string.Join(" × ", tensor.Axes)} ({string.Join(" × ", tensor.Shape)}): "
                                            + $"`{string.Join(" ", cell)}` does not name one of its cells");
            offset = offset * tensor.Shape[a] + index;
        }
        return tensor.Values[offset];
    }

    static string Example(string first) => first switch
    {
        "detect" => "detect previous_token L0H2",
        "patch" => "patch heads L1H0",
        "compose" => "compose k L0H0 L1H1",
        _ => "circuit ov L1H1 copying",
    };

    [GeneratedRegex(@"^L(\d{1,9})H(\d{1,9})$")]
    private static partial Regex HeadRegex();

    [GeneratedRegex(@"^L(\d{1,9})$")]
    private static partial Regex LayerRegex();
}
