using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>`score`, `detect` and `heads`: per-head scores from the analysis library, and head selections.</summary>
internal static class HeadStages
{
    public static ExperimentState Score(ScoreStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var scores = ComputeScores(s.Kind, state, s);
        return (state with { Scores = state.Scores.SetItem(s.Kind, scores) }).WithResult(s, scores);
    }

    /// <summary>
    /// Stripe scores of every head on the current input, with the interventions in force (HeadScores). For a `score`
    /// statement that the checks split into chunks of rows, each chunk is scored and the chunks are averaged weighted
    /// by their rows (scores are means over rows).
    /// </summary>
    public static LayerHeadValue ComputeScores(ScoreKind kind, ExperimentState state, Statement? statement = null)
    {
        var chunks = statement is null ? [] : BatchChunks.Of(state, statement).ToList();
        if (chunks.Count <= 1) return ScoresOf(kind, state, null);
        var input = state.RequireInput("score");
        var parts = chunks.Select(c => (c.Rows.Batch, ScoresOf(kind, state, c.Rows))).ToList();
        var first = parts[0].Item2;
        var values =
            first.Values.Select((row, l) =>
                row.Select((_, h) => parts.Sum(p => p.Batch * p.Item2.Values[l][h]) / input.Batch).ToArray()).ToArray();
        return first with { Values = values };
    }

    static LayerHeadValue ScoresOf(ScoreKind kind, ExperimentState state, ExperimentInput? rows)
    {
        var name = Keywords.ScoreKinds.Text(kind);
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "score " + name, masked: true, rows);
        var (model, input, tokens) = (pass.Model, pass.Input, pass.Tokens);
        if (kind != ScoreKind.PrevToken && input.NotRepeated(kind == ScoreKind.Induction) is string why)
            throw new InvalidOperationException(
                $"`score {name}` needs an input whose rows are a block repeated: {why}");
        if (pass.AttentionMask is not null)
            return new LayerHeadValue(name, TensorData.Grid(MaskedStripes(kind, pass)))
            {
                Title =
                    $"{name} scores (stripe attention) on {Printer.Print(input.Source)}, each row over its own tokens",
            };
        // A `repeat random` input knows its block length; for any other the library finds each row's.
        using var table = (kind, input.Repeat) switch
        {
            (ScoreKind.PrevToken, _) => HeadScores.PreviousToken(model, tokens),
            (ScoreKind.Induction, { } layout) => HeadScores.Induction(model, tokens, layout.Length),
            (ScoreKind.Induction, null) => HeadScores.Induction(model, tokens),
            (_, { } layout) => HeadScores.DuplicateToken(model, tokens, layout.Length),
            _ => HeadScores.DuplicateToken(model, tokens),
        };
        return new LayerHeadValue(name, TensorData.Grid(table.Scores))
        {
            Title = $"{name} scores (stripe attention) on {Printer.Print(input.Source)}"
        };
    }

    /// <summary>
    /// Stripe scores of texts of different lengths: one masked run, then each row's stripe over its real tokens
    /// only (its pattern's [real, real] corner, the block length found on its real tokens), averaged over rows.
    /// </summary>
    static Tensor MaskedStripes(ScoreKind kind, StagePass pass)
    {
        var (model, input) = (pass.Model, pass.Input);
        using var run = model.RunWithCache(pass.Tokens, ReturnType.None,
            HookedTransformer.NamesFilter("blocks.*.attn.hook_pattern"), attentionMask: pass.AttentionMask);
        var perRow = new List<Tensor>();
        for (int r = 0; r < input.Batch; r++)
        {
            var ids = input.RealIds(r);
            int length = ids.Length;
            int offset = kind switch
            {
                ScoreKind.PrevToken => -1,
                ScoreKind.Induction => -(RepeatPeriod.Detect(ids)!.Length - 1),
                _ => -RepeatPeriod.Detect(ids)!.Length,
            };
            if (-offset >= length)
                throw new ArgumentException(
                    $"row {r + 1} of the input has {length} real tokens: too few for a stripe at offset {offset}");
            var layers = Enumerable.Range(0, model.Config.NLayers).Select(l =>
                // [head, query, key] over real tokens
                run.Cache["pattern", l][r].narrow(1, 0, length).narrow(2, 0, length)
                    .diagonal(offset, -2, -1).to(ScalarType.Float32).mean([1L])).ToArray();
            perRow.Add(stack(layers, 0));
        }
        return stack(perRow, 0).mean([0L]);
    }

    public static ExperimentState Detect(DetectStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var model = state.RequireModel().Model;
        var input = state.RequireInput("detect");
        using var scope = NewDisposeScope();
        using var hooks = ModelEdits.Attach(model, state);
        // detect_head scores each text alone, so a padded text is scored on its own tokens.
        var rows = Enumerable.Range(0, input.Batch)
            .Select(r => tensor(input.RealIds(r), dtype: ScalarType.Int64, device: model.Device)).ToList();
        var measure = Keywords.ErrorMeasures.Text(s.ErrorMeasure);
        Tensor scores;
        string what;
        switch (s.Pattern)
        {
            case BuiltinPattern b:
                what = Keywords.BuiltinPatterns.Text(b.Kind);
                scores = HeadDetector.DetectHead(model, rows, what + "_head", null, s.ExcludeBos, s.ExcludeCurrentToken,
                    measure);
                break;
            case PatternName p when state.Bindings.GetValueOrDefault(p.Name) is PatternBinding bound:
                what = p.Name;
                var pattern = tensor(bound.Rows.SelectMany(r => r).Select(v => (float)v).ToArray(),
                    [bound.Rows.Length, bound.Rows.Length]);
                if (Enumerable.Range(0, input.Batch)
                    .FirstOrDefault(r => input.RealIds(r).Length != bound.Rows.Length, -1) is int odd and >= 0)
                    throw new ArgumentException($"pattern '{p.Name}' is {bound.Rows.Length}×{bound.Rows.Length} but "
                                                + $"row {odd + 1} of the input has {input.RealIds(odd).Length} tokens: "
                                                + "a pattern fits texts of its own length only");
                scores =
                    HeadDetector.DetectHead(model, rows, pattern, null, s.ExcludeBos, s.ExcludeCurrentToken, measure);
                break;
            default:
                throw new KeyNotFoundException($"'{s.Pattern}' is not a let-bound detection pattern");
        }
        var options = string.Join(", ", new[]
        {
            s.ExcludeBos ? "exclude_bos" : null, s.ExcludeCurrentToken ? "exclude_current" : null, $"error {measure}"
        }.OfType<string>());
        var value = new LayerHeadValue($"detect {what}", TensorData.Grid(scores))
        {
            Title = $"{what} head detection ({options}) on {Printer.Print(input.Source)}"
                + (input.Batch > 1 ? $", mean of {input.Batch} rows" : ""),
        };
        return state.WithResult(s, value);
    }

    public static ExperimentState Heads(HeadsStatement s, ExperimentState state)
    {
        state = state.WithModel();
        return state.WithResult(s,
            new HeadsValue(Resolve(s.Selection, state)) { Title = $"heads {Printer.Print(s.Selection)}" });
    }

    /// <summary>
    /// The heads a selection picks now: `where` conditions read the latest `score` of their kind, or
    /// compute it on the current input when there is none yet.
    /// </summary>
    public static IReadOnlyList<HeadRef> Resolve(Selection selection, ExperimentState state)
    {
        var cfg = state.RequireModel().Config;
        return Selections.Resolve(selection, cfg.NLayers, cfg.NHeads,
            name => state.Bindings.GetValueOrDefault(name) is SelectionBinding b
                ? b.Heads
                : throw new KeyNotFoundException($"'{name}' is not a let-bound selection"),
            kind => (state.Scores.GetValueOrDefault(kind) ?? ComputeScores(kind, state)).Values);
    }
}
