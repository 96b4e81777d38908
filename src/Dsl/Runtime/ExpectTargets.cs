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
    static readonly string[] Qualified = ["detect", "patch", "compose", "circuit", "print", "sae", "features"];

    /// <summary>The columns each table result's targets can name (the first is read when none is named, where
    /// marked).</summary>
    static readonly string[] LogitColumns = ["logit", "probability", "rank", "id"];
    static readonly string[] RunColumns = ["probability", "id"];
    static readonly string[] LensColumns = ["probability", "final"];
    static readonly string[] ActivationStatistics = ["mean", "std", "min", "max", "norm"];
    static readonly string[] FeatureColumns = ["activation", "feature"];
    static readonly string[] FeatureLogitColumns = ["weight", "id"];
    static readonly string[] Directions = ["promoted", "suppressed"];

    /// <summary>The names of `sae metrics` (SaeMetrics.Named), which `expect sae metrics NAME` reads.</summary>
    public static readonly IReadOnlyList<string> SaeMetricNames =
    [
        "l0", "l1", "mse", "explained_variance", "explained_variance_legacy", "cossim", "l2_norm_in", "l2_norm_out",
            "l2_ratio",
        "relative_reconstruction_bias", "ce_loss_without_sae", "ce_loss_with_sae", "ce_loss_with_ablation",
            "ce_loss_score",
        "kl_div_with_sae", "kl_div_with_ablation", "kl_div_score", "explained_variance_centred", "mse_loss",
            "firing_fraction", "dead_features", "dense_features", "tokens",
    ];

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
        AttributePatchStatement s => "attribute patch " + Keywords.PatchTargets.Text(s.Target),
        RunStatement => "run",
        LogitsStatement => "logits",
        LogitLensStatement => "logit_lens",
        CacheStatement { Action: CacheAction.Load } => "cache",
        PrintStatement { Subject: PrintHook h } => "print " + h.Hook.FullName,
        HeadsStatement => "heads",
        GenerateStatement => "generated",
        SaeMetricsStatement => "sae metrics",
        FeaturesTopStatement => "features top",
        FeatureLogitsStatement => "features logits",
        _ => null,
    };

    /// <summary>The result key a target reads and its cell words.</summary>
    public static (string Key, string[] Cell) Split(ExpectTarget target)
    {
        var words = target.Words;
        // `logit TOKEN` is `logits TOKEN logit`.
        if (words[0] == "logit")
            return ("logits",
                words.Skip(1).Concat(words.Skip(1).Any(LogitColumns.Contains) ? Array.Empty<string>() : ["logit"])
                .ToArray());
        int qualifiers = words[0] == "attribute" && words.Count > 1 && words[1] == "patch"
            ? 3
            : Qualified.Contains(words[0]) ? 2 : 1;
        if (words.Count < qualifiers)
            throw new ArgumentException(
                $"`expect {words[0]}` needs what it reads next, as in `expect {Example(words[0])} > 0.5`");
        var key = string.Join(" ", words.Take(qualifiers));
        var cell = words.Skip(qualifiers).ToList();
        // `features logits promoted 2` is the promoted token of rank 2.
        if (key == "features logits" && cell.Count > 1 && Directions.Contains(cell[0])
            && cell[1].All(char.IsAsciiDigit)) cell.Insert(1, "rank");
        return (key, cell.ToArray());
    }

    /// <summary>The statement that makes results under a key, for messages ("run `score induction` first").</summary>
    public static string Producer(string key) =>
        Keywords.ScoreKinds.TryParse(key, out _) ? "score " + key
        : key == "generated" ? "generate"
        : key == "cache" ? "cache load"
        : key;

    /// <summary>
    /// Why a target cannot name a value (null: it can), with the word to point at: checks the words against the
    /// shape of the result they read (<see cref="TargetContext.Producer"/>, the statement that makes it), and
    /// heads, layers, positions, rows, tokens and hooks against the model and the current input.
    /// </summary>
    public static (string Problem, string Near)? Problem(ExpectTarget target, TargetContext context)
    {
        var words = target.Words;
        switch (words[0])
        {
            case "logit" or "logits" or "run" or "logit_lens" or "cache" or "print" or "heads" or "generated" or "sae"
                or "features":
            case "predict" when !words.Contains("accuracy"):
                return TableProblem(target, context);
            case "attribute" when words.Count > 1 && words[1] == "patch":
                if (words.Count < 3)
                    return ("`expect attribute patch` needs a patch target and a cell, as in `expect attribute patch " +
                        "heads L1H0 > 0.1`", "patch");
                // The cells of `patch TARGET`.
                return CellProblem(new ExpectTarget(NodeList.From(words.Skip(1))), context.Layers, context.Heads,
                    context.Positions, context.IsPattern);
        }
        return CellProblem(target, context.Layers, context.Heads, context.Positions, context.IsPattern);
    }

    /// <summary>Why a text target (`expect generated [row R] [new] contains "..."`) cannot name a text (null: it
    /// can).</summary>
    public static (string Problem, string Near)? TextProblem(ExpectTarget target, TargetContext context)
    {
        var words = target.Words;
        if (words[0] != "generated")
            return ($"only generated text is compared with contains or equals: write `expect generated contains " +
                $"\"...\"`; `{words[0]}` is compared with a number", words[0]);
        var cell = ParseCell(words.Skip(1).ToArray());
        if (cell.Problem is { } problem) return (problem, cell.Near!);
        if (cell.Pos is not null || cell.Rank is not null || cell.Rest.Any(w => w != "new"))
            return ("`expect generated` reads a row's text (`generated`, `generated row 1`) or its new tokens only " +
                "(`generated new`)", words[^1]);
        return RowProblem(cell, context);
    }

    static (string, string)? RowProblem(Cell cell, TargetContext context) =>
        cell.Row is int r && context.Batch is int b && r >= b
            ? ($"row {r} is out of range: the input has {b} rows (row 0..{b - 1})",
                r.ToString(CultureInfo.InvariantCulture))
            : null;

    static (string, string)? PositionProblem(int? pos, TargetContext context) =>
        pos is int p && context.Positions is int n && p >= n
            ? ($"position {p} is out of range: the input has {n} tokens (pos 0..{n - 1})",
                p.ToString(CultureInfo.InvariantCulture))
            : null;

    /// <summary>The cell words of a table target: `row R`, `pos P`, `rank K` in any order, and the other
    /// words.</summary>
    sealed record Cell(int? Row, int? Pos, int? Rank, List<string> Rest, string? Problem = null, string? Near = null);

    static Cell ParseCell(string[] words)
    {
        int? row = null, pos = null, rank = null;
        var rest = new List<string>();
        for (int i = 0; i < words.Length; i++)
        {
            var w = words[i];
            // `rank` followed by a number picks a listed rank; alone it is the logits' `rank` column.
            if (w is "row" or "pos" || w == "rank" && i + 1 < words.Length && words[i + 1].All(char.IsAsciiDigit))
            {
                if (i + 1 >= words.Length
                    || !int.TryParse(words[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out var n)
                    || w == "rank" && n < 1)
                    return new Cell(null, null, null, rest,
                        $"expected {(w == "rank" ? "a rank of 1 or more" : "a number")} after '{w}'", w);
                if (w == "row") row = n; else if (w == "pos") pos = n; else rank = n;
                i++;
            }
            else rest.Add(w);
        }
        return new Cell(row, pos, rank, rest);
    }

    /// <summary>The one word of <paramref name="rest"/> among <paramref name="columns"/> (removed from it), or null; a
    /// problem when several are.</summary>
    static (string? Column, string? Problem) TakeColumn(List<string> rest, string[] columns)
    {
        var found = rest.Where(columns.Contains).ToList();
        if (found.Count > 1)
            return (null, $"name one column ({Listing.Or(columns)}), not {string.Join(" and ", found)}");
        if (found.Count == 1) rest.Remove(found[0]);
        return (found.FirstOrDefault(), null);
    }

    static (string Problem, string Near)? TableProblem(ExpectTarget target, TargetContext context)
    {
        var words = target.Words;
        var first = words[0];
        if (first is "print" or "sae" or "features")
        {
            if (words.Count < 2)
                return ($"`expect {first}` needs what it reads next, as in `expect {Example(first)} > 0.5`", first);
            if (first == "sae" && words[1] != "metrics")
                return ($"unknown SAE result '{words[1]}' in the expectation; expected metrics", words[1]);
            if (first == "features" && words[1] is not ("top" or "logits"))
                return ($"unknown feature table '{words[1]}' in the expectation; expected top or logits", words[1]);
        }
        var (key, cellWords) = Split(target);
        var cell = ParseCell(cellWords);
        if (cell.Problem is { } bad) return (bad, cell.Near!);
        var near = cellWords.Length > 0 ? cellWords[0] : key.Split(' ')[^1];
        string Usage(string form) => $"`expect {key}` reads {form}";
        (string, string)? Columns(string[] columns, bool required, out string? column)
        {
            var (c, problem) = TakeColumn(cell.Rest, columns);
            column = c;
            if (problem is not null) return (problem, near);
            if (required && c is null) return ($"name a column of the {key} result: {Listing.Or(columns)}", near);
            return null;
        }
        (string, string)? Rest(int count, string form) =>
            cell.Rest.Count == count ? null : (Usage(form), cell.Rest.Count > count ? cell.Rest[count] : near);
        switch (key)
        {
            case "logits":
            {
                if (Columns(LogitColumns, false, out var column) is { } p) return p;
                const string form = "a token's `logit`, `probability` or `rank` (`logits \" Mary\" probability`, " +
                    "`logit 1300`) or a listed rank's (`logits rank 1 id`), with `row R` for another row";
                if (cell.Rank is int k)
                {
                    if (Rest(0, form) is { } r) return r;
                    if (column == "rank")
                        return ("`logits rank K` names a rank already: read its `logit`, `probability` or `id`",
                            "rank");
                    if (context.Producer is LogitsStatement { Top: int top } && k > top)
                        return ($"rank {k} is not listed: the logits statement lists the top {top}",
                            k.ToString(CultureInfo.InvariantCulture));
                }
                else
                {
                    if (Rest(1, form) is { } r) return r;
                    if (column == "id")
                        return ("a token's id is known: read its `logit`, `probability` or `rank`", "id");
                    if (context.TokenProblem(cell.Rest[0]) is { } tokenProblem) return (tokenProblem, cell.Rest[0]);
                }
                return RowProblem(cell, context);
            }
            case "run":
            {
                if (Columns(RunColumns, true, out _) is { } p) return p;
                return Rest(0,
                    "the predicted next token's `probability` or `id`, as in `run probability`, with `row R` for " +
                    "another row") ?? RowProblem(cell, context);
            }
            case "predict":
            {
                if (Columns(["probability"], false, out _) is { } p) return p;
                if (cell.Pos is null)
                    return (Usage("`accuracy`, `accuracy repeat 2`, or the probability of the prediction at a " +
                        "position (`predict pos 7`, with `row R`)"), near);
                return Rest(0, "the probability of the prediction at a position (`predict pos 7`)")
                    ?? PositionProblem(cell.Pos, context) ?? RowProblem(cell, context);
            }
            case "logit_lens":
            {
                if (Columns(LensColumns, true, out _) is { } p) return p;
                if (Rest(1,
                    "a residual stream's row and a column, as in `logit_lens 1_pre probability` (`final`: p(final " +
                    "prediction))") is { } r) return r;
                var labels = Enumerable.Range(0, context.Layers).Select(l => $"{l}_pre").Append("final_post").ToList();
                return labels.Contains(cell.Rest[0]) ? null
                    : ($"'{cell.Rest[0]}' is not a row of the logit lens; the rows are {string.Join(", ", labels)}",
                        cell.Rest[0]);
            }
            case "cache":
            {
                if (Rest(1,
                    "an activation's max |difference| (`cache blocks.0.hook_resid_post`) or the largest (`cache " +
                    "max`)") is { } r) return r;
                return cell.Rest[0] == "max"
                    ? null
                    : context.HookProblem(cell.Rest[0]) is { } hookProblem ? (hookProblem, cell.Rest[0]) : null;
            }
            case "heads":
                return cell.Rest is ["count"] && cell.Row is null && cell.Pos is null && cell.Rank is null
                    ? null
                    : (Usage("`count`, the number of heads the selection picks"), near);
            case "generated":
                return ("`expect generated` compares text: write `expect generated contains \"...\"` or `equals " +
                    "\"...\"`", "generated");
            case "sae metrics":
                return cell.Rest.Count == 1 && SaeMetricNames.Contains(cell.Rest[0]) ? null
                    : (Usage($"one metric: {string.Join(", ", SaeMetricNames)}"),
                        cell.Rest.Count > 0 ? cell.Rest[0] : "metrics");
            case "features top":
            {
                if (Columns(FeatureColumns, false, out _) is { } p) return p;
                const string form = "a rank at a position, as in `features top pos 7 rank 1` (its `activation`, or " +
                    "`feature` for its index), with `row R` for another row";
                if (Rest(0, form) is { } r) return r;
                if (cell.Rank is not int k) return (form, near);
                var producer = context.Producer as FeaturesTopStatement;
                if (producer is { } f && k > f.Top)
                    return ($"rank {k} is not listed: the features statement lists the top {f.Top}",
                        k.ToString(CultureInfo.InvariantCulture));
                if (cell.Pos is null && producer is { Position: null }) return ($"name a position: {form}", near);
                if (cell.Pos is int at && producer is { Position: int only } && at != only)
                    return ($"the features statement lists position {only} only",
                        at.ToString(CultureInfo.InvariantCulture));
                return PositionProblem(cell.Pos, context) ?? RowProblem(cell, context);
            }
            case "features logits":
            {
                if (Columns(FeatureLogitColumns, false, out _) is { } p) return p;
                const string form = "a promoted or suppressed token by rank, as in `features logits promoted 1` (its " +
                    "`weight`, or `id`)";
                if (Rest(1, form) is { } r) return r;
                if (!Directions.Contains(cell.Rest[0])) return (form, cell.Rest[0]);
                var top = (context.Producer as FeatureLogitsStatement)?.Top ?? SaeStages.DefaultTop;
                if (cell.Rank is not int k) return (form, near);
                return k > top
                    ? ($"rank {k} is not listed: the features logits statement lists {top} tokens each way",
                        k.ToString(CultureInfo.InvariantCulture))
                    : null;
            }
            default:   // print HOOK
            {
                if (Columns(ActivationStatistics, true, out _) is { } p) return p;
                return Rest(0, $"a statistic of the activation: {Listing.Or(ActivationStatistics)}");
            }
        }
    }

    /// <summary>
    /// Why a target cannot name a value (null: it can), with the word to point at. Checks the words against
    /// the result's shape, and heads, layers and positions against the model and the current input.
    /// </summary>
    static (string Problem, string Near)? CellProblem(ExpectTarget target, int layers, int heads, int? positions,
        Func<string, bool> isPattern)
    {
        var words = target.Words;
        var first = words[0];
        if (Qualified.Contains(first))
        {
            if (words.Count < 2)
                return ($"`expect {first}` needs what it reads next, as in `expect {Example(first)} > 0.5`", first);
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
                var what = first switch
                {
                    "detect" => "detection pattern",
                    "patch" => "patch target",
                    "compose" => "composition kind",
                    _ => "circuit kind"
                };
                var hint = Suggest.DidYouMean(Suggest.Nearest(qualifier, valid))
                    ?? "expected " + Listing.Or(valid) + (first == "detect" ? " or a let-bound pattern" : "");
                return ($"unknown {what} '{qualifier}' in the expectation; {hint}", qualifier);
            }
        }
        var (key, cell) = Split(target);
        string? HeadProblem(string word)
        {
            if (HeadRegex().Match(word) is not { Success: true } m)
                return $"'{word}' is not a head: expected one such as L1H1";
            int l = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                h = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (l >= layers) return $"layer {l} is out of range: the model has {layers} layers (L0..L{layers - 1})";
            if (h >= heads)
                return $"head {h} is out of range: the model has {heads} heads per layer (H0..H{heads - 1})";
            return null;
        }
        string? LayerProblem(string word)
        {
            if (LayerRegex().Match(word) is not { Success: true } m)
                return $"'{word}' is not a layer: expected one such as L1";
            int l = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            return l >= layers ? $"layer {l} is out of range: the model has {layers} layers (L0..L{layers - 1})" : null;
        }
        string? PositionProblem(string[] pos)
        {
            if (pos.Length != 2 || pos[0] != "pos"
                || !int.TryParse(pos[1], NumberStyles.None, CultureInfo.InvariantCulture, out var p))
                return $"expected a position such as `pos 7` after the layer";
            return positions is int n && p >= n
                ? $"position {p} is out of range: the input has {n} tokens (pos 0..{n - 1})"
                : null;
        }
        (string, string)? At(string? problem, string near) => problem is null ? null : (problem, near);
        string Usage(string form) => $"`expect {key}` reads {form}";
        bool Baseline() => cell is ["clean"] or ["corrupted"];
        switch (key.Split(' ')[0])
        {
            case "induction" or "prev_token" or "duplicate_token" or "detect" or "attribute":
                if (cell.Length != 1)
                    return (Usage(key == "attribute"
                        ? "one head, as in `attribute L1H1`, or a component, as in `attribute embed`"
                        : $"one head, as in `{key} L1H1`"), cell.Length > 0 ? cell[^1] : key.Split(' ')[^1]);
                // a component, known when it runs
                if (key == "attribute" && !HeadRegex().IsMatch(cell[0]) && !LayerRegex().IsMatch(cell[0])) return null;
                return At(HeadProblem(cell[0]), cell[0]);
            case "loss":
                if (cell.Length == 0) return null;
                return cell is ["repeat", var k]
                    && int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out var copy) && copy >= 1
                    ? null : (Usage("the mean loss (`loss`) or one copy's (`loss repeat 2`)"), cell[0]);
            case "predict":
                return cell is ["accuracy"]
                    || cell is ["accuracy", "repeat", var c]
                    && int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 1
                    ? null : (Usage("`accuracy` or `accuracy repeat 2`"), cell.Length > 0 ? cell[0] : "predict");
            case "patch":
                if (Baseline()) return null;
                switch (key)
                {
                    case "patch heads":
                        if (cell.Length != 1)
                            return (Usage("one head (`patch heads L1H0`), `clean` or `corrupted`"),
                                cell.Length > 0 ? cell[0] : "heads");
                        return At(HeadProblem(cell[0]), cell[0]);
                    case "patch heads_by_pos":
                        if (cell.Length != 3)
                            return (Usage("a head and a position (`patch heads_by_pos L1H0 pos 7`), `clean` or " +
                                "`corrupted`"), cell.Length > 0 ? cell[0] : "heads_by_pos");
                        return At(HeadProblem(cell[0]), cell[0]) ?? At(PositionProblem(cell[1..]), cell[1]);
                    case "patch blocks":
                        if (cell.Length != 4 || !BlockComponents.Contains(cell[0]))
                            return (Usage("a component, a layer and a position (`patch blocks attn_out L1 pos 7`), " +
                                "`clean` or `corrupted`"), cell.Length > 0 ? cell[0] : "blocks");
                        return At(LayerProblem(cell[1]), cell[1]) ?? At(PositionProblem(cell[2..]), cell[2]);
                    default:
                        if (cell.Length != 3)
                            return (Usage($"a layer and a position (`{key} L1 pos 7`), `clean` or `corrupted`"),
                                cell.Length > 0 ? cell[0] : key.Split(' ')[1]);
                        return At(LayerProblem(cell[0]), cell[0]) ?? At(PositionProblem(cell[1..]), cell[1]);
                }
            case "compose":
                if (cell.Length != 2)
                    return (Usage($"a writing head and a reading head, as in `{key} L0H0 L1H1`"),
                        cell.Length > 0 ? cell[0] : key.Split(' ')[1]);
                return At(HeadProblem(cell[0]), cell[0]) ?? At(HeadProblem(cell[1]), cell[1]);
            default:   // circuit
                if (cell.Length != 2 || !CircuitColumns.Contains(cell[1]))
                    return (Usage($"a head and a column ({Listing.Or(CircuitColumns)}), as in `{key} L1H1 copying`"),
                        cell.Length > 1 ? cell[1] : key.Split(' ')[1]);
                return At(HeadProblem(cell[0]), cell[0]);
        }
    }

    /// <summary>
    /// The value a target names in a result, and its text as the result's own table prints it (a layer × head
    /// table with 3 decimals, other numbers as <see cref="Numbers.Text"/>); an error when the result does not hold it.
    /// </summary>
    public static (double Value, string Shown) Read(string key, string[] cell, ResultValue value,
        Func<string, long>? tokenId = null)
    {
        var result = key.Split(' ')[0];
        if (result is "logits" or "run" or "logit_lens" or "cache" or "print" or "heads" or "sae" or "features"
            || key == "predict" && !cell.Contains("accuracy"))
        {
            var n = TableNumber(key, cell, value, tokenId);
            return (n,
                Counts(key, cell) && Math.Abs(n) < 1e15
                    ? ((long)n).ToString(CultureInfo.InvariantCulture)
                    : Numbers.Text(n));
        }
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
                int l = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                    h = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                if (l >= table.Layers || h >= table.Heads)
                    throw new ArgumentException(
                        $"{head} is not in the {key} table ({table.Layers} layers × {table.Heads} heads)");
                return table[l, h];
            }
            case ScalarValue scalar when cell.Length == 0:
                return scalar.Value;
            case TensorValue tensor when cell.Length > 1:
                return TensorCell(key, cell, tensor);
            case MatrixValue matrix when cell is [var row, var column]:
            {
                int r = Array.IndexOf(matrix.RowLabels, row), c = Array.IndexOf(matrix.ColumnLabels, column);
                if (r < 0)
                    throw new ArgumentException(
                        $"{row} is not a row of the {key} result (rows: {string.Join(", ", matrix.RowLabels)})");
                if (c < 0)
                    throw new ArgumentException($"{column} is not a column of the {key} result " +
                        $"(columns: {string.Join(", ", matrix.ColumnLabels)})");
                return matrix.Values[r][c];
            }
            case CircuitValue circuit when cell is [var head, var column]:
            {
                var table = circuit.Heads;
                int c = Array.FindIndex(table.Columns, name => name.Split(' ')[0] == column);
                var row = table.Rows.FirstOrDefault(r => r[0] as string == head);
                if (c < 0)
                    throw new ArgumentException($"the {key} table has no '{column}' column " +
                        $"(columns: {string.Join(", ", table.Columns.Skip(1))})");
                if (row is null)
                    throw new ArgumentException($"{head} is not one of the heads of the {key} result " +
                        $"({string.Join(", ", table.Rows.Select(r => r[0]))})");
                return Convert.ToDouble(row[c], CultureInfo.InvariantCulture);
            }
        }
        // Everything else is a named number of the summary: `repeat 2`, `accuracy repeat 2`, `clean`, `embed`.
        var name = string.Join(" ", cell);
        foreach (var (summaryName, v) in value.Summary)
            if (summaryName.Replace(",", "") == name) return v;
        throw new ArgumentException(cell.Length == 0
            ? $"the {key} result is not one number: name a cell"
            : $"the {key} result has no '{name}'"
                + (value.Summary.Count > 0
                    ? $" (it has {string.Join(", ", value.Summary.Select(kv => kv.Key.Replace(",", "")))})"
                    : ""));
    }

    /// <summary>Whether a table target names a whole number (an id, a rank, a count, a feature index), shown without
    /// decimals.</summary>
    static bool Counts(string key, string[] cell) =>
        cell.Any(w => w is "id" or "count" or "feature" or "dead_features" or "dense_features" or "tokens")
        || key == "logits" && cell.Contains("rank") && !ParseCell(cell).Rank.HasValue;

    /// <summary>The text a text target names: a generated row's whole text, or its new tokens only (`new`).</summary>
    public static string ReadText(string[] cell, ResultValue value)
    {
        if (value is not TextValue text) throw new ArgumentException($"the generated result is {value.Kind}, not text");
        var c = ParseCell(cell);
        int row = c.Row ?? 0;
        if (row >= text.Texts.Length)
            throw new ArgumentException($"row {row} is out of range: {text.Texts.Length} rows were generated");
        return c.Rest.Contains("new") ? string.Concat(text.Tokens[row]) : text.Texts[row];
    }

    static long Integer(object cell) => Convert.ToInt64(cell, CultureInfo.InvariantCulture);

    static double Real(object cell) => Convert.ToDouble(cell, CultureInfo.InvariantCulture);

    static object[] FindRow(string key, TableValue table, Func<object[], bool> match, string what) =>
        table.Rows.FirstOrDefault(match) ?? throw new ArgumentException($"the {key} result has no {what}");

    /// <summary>A number of a table result (logits, run, predict, logit_lens, cache, print, heads, sae metrics,
    /// features).</summary>
    static double TableNumber(string key, string[] cellWords, ResultValue value, Func<string, long>? tokenId)
    {
        var cell = ParseCell(cellWords);
        if (cell.Problem is { } problem) throw new ArgumentException(problem);
        int row = cell.Row ?? 0;
        string? Column(string[] columns) => TakeColumn(cell.Rest, columns).Column;
        TableValue Table() => value as TableValue ?? (value as LogitsValue)?.Listed
            ?? throw new ArgumentException($"the {key} result is {value.Kind}, not a table");
        switch (key)
        {
            case "logits":
            {
                var logits = value as LogitsValue ?? throw new ArgumentException($"the logits result is {value.Kind}");
                var column = Column(LogitColumns) ?? "logit";
                if (row >= logits.Last.Length)
                    throw new ArgumentException(
                        $"row {row} is out of range: the logits have {logits.Last.Length} rows");
                if (cell.Rank is int k)
                {
                    var r = FindRow(key, logits.Listed, x => Integer(x[0]) == row && Integer(x[1]) == k,
                        $"rank {k} in row {row}");
                    return column == "id" ? Integer(r[3]) : Real(r[column == "probability" ? 5 : 4]);
                }
                var word = cell.Rest.Single();
                long id = word.All(char.IsAsciiDigit) ? long.Parse(word, CultureInfo.InvariantCulture)
                    : tokenId?.Invoke(word) ?? throw new ArgumentException("token text needs the model's tokenizer");
                if (id < 0 || id >= logits.Last[row].Length)
                    throw new ArgumentException(
                        $"token id {id} is out of range: the model predicts {logits.Last[row].Length} tokens");
                return column switch
                {
                    "probability" => logits.Probability(row, id),
                    "rank" => logits.Rank(row, id),
                    _ => logits.Logit(row, id)
                };
            }
            case "run":
            {
                var r = FindRow(key, Table(), x => Integer(x[0]) == row, $"row {row}");
                return Column(RunColumns) == "id" ? Integer(r[3]) : Real(r[4]);
            }
            case "predict":
            {
                var r = FindRow(key, Table(), x => Integer(x[0]) == row && Integer(x[1]) == cell.Pos,
                    $"prediction at row {row}, position {cell.Pos} (a pad?)");
                return Real(r[4]);
            }
            case "logit_lens":
            {
                var column = Column(LensColumns);
                var label = cell.Rest.Single();
                var r = FindRow(key, Table(), x => x[0] as string == label, $"row '{label}'");
                return Real(r[column == "final" ? 3 : 2]);
            }
            case "cache":
            {
                var name = cell.Rest.Single();
                var table = Table();
                if (name == "max")
                    return table.Rows.Length == 0
                        ? throw new ArgumentException("the cache comparison compared no activation")
                        : table.Rows.Select(x => Real(x[2]))
                            .Aggregate(double.NegativeInfinity,
                            (a, b) => double.IsNaN(a) || double.IsNaN(b) ? double.NaN : Math.Max(a, b));
                return Real(FindRow(key, table, x => x[0] as string == name,
                    $"activation {name} (the file or the filter left it out)")[2]);
            }
            case "heads":
                return value is HeadsValue heads
                    ? heads.Heads.Count
                    : throw new ArgumentException($"the heads result is {value.Kind}");
            case "sae metrics":
            {
                var name = cell.Rest.Single();
                return Real(FindRow(key, Table(), x => x[0] as string == name, $"metric {name}")[1]);
            }
            case "features top":
            {
                var table = Table();
                var column = Column(FeatureColumns);
                var listed = table.Rows.Select(x => (int)Integer(x[1])).Distinct().ToList();
                int pos = cell.Pos ?? (listed.Count == 1 ? listed[0] : -1);
                var r =
                    FindRow(key, table, x => Integer(x[0]) == row && Integer(x[1]) == pos && Integer(x[3]) == cell.Rank,
                    $"rank {cell.Rank} at row {row}, position {pos}: fewer features are active (above 0) there");
                return column == "feature" ? Integer(r[4]) : Real(r[5]);
            }
            case "features logits":
            {
                var column = Column(FeatureLogitColumns);
                var direction = cell.Rest.Single();
                var r = FindRow(key, Table(), x => x[0] as string == direction && Integer(x[1]) == cell.Rank,
                    $"{direction} token of rank {cell.Rank}");
                return column == "id" ? Integer(r[3]) : Real(r[4]);
            }
            default:
            {
                var a = value as ActivationValue
                    ?? throw new ArgumentException($"the {key} result is {value.Kind}, not an activation");
                return Column(ActivationStatistics) switch
                {
                    "mean" => a.Mean,
                    "std" => a.Std,
                    "min" => a.Min,
                    "max" => a.Max,
                    _ => a.Norm
                };
            }
        }
    }

    static double TensorCell(string key, string[] cell, TensorValue tensor)
    {
        int? layer = null, head = null, pos = null;
        string? component = null;
        for (int i = 0; i < cell.Length; i++)
        {
            if (HeadRegex().Match(cell[i]) is { Success: true } h)
            {
                layer = int.Parse(h.Groups[1].Value, CultureInfo.InvariantCulture);
                head = int.Parse(h.Groups[2].Value, CultureInfo.InvariantCulture);
            }
            else if (LayerRegex().Match(cell[i]) is { Success: true } l)
                layer = int.Parse(l.Groups[1].Value, CultureInfo.InvariantCulture);
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
                throw new ArgumentException($"the {key} result has axes {string.Join(" × ", tensor.Axes)} "
                                            + $"({string.Join(" × ", tensor.Shape)}): "
                                            + $"`{string.Join(" ", cell)}` does not name one of its cells");
            offset = offset * tensor.Shape[a] + index;
        }
        return tensor.Values[offset];
    }

    static string Example(string first) => first switch
    {
        "print" => "print blocks.0.hook_resid_post norm",
        "sae" => "sae metrics l0",
        "features" => "features top pos 7 rank 1",
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
