using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>`score`, `detect` and `heads`: per-head scores from the analysis library, and head selections.</summary>
internal static class HeadStages
{
    public static ExperimentState Score(ScoreStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var scores = ComputeScores(s.Kind, state);
        return (state with { Scores = state.Scores.SetItem(s.Kind, scores) }).WithResult(s, scores);
    }

    /// <summary>Stripe scores of every head on the current input, with the interventions in force (HeadScores).</summary>
    public static LayerHeadValue ComputeScores(ScoreKind kind, ExperimentState state)
    {
        var name = Keywords.ScoreKinds.Text(kind);
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "score " + name);
        var (model, input, tokens) = (pass.Model, pass.Input, pass.Tokens);
        if (kind != ScoreKind.PrevToken && input.NotRepeated(kind == ScoreKind.Induction) is string why)
            throw new InvalidOperationException($"`score {name}` needs an input whose rows are a block repeated: {why}");
        // A `repeat random` input knows its block length; for any other the library finds each row's.
        using var table = (kind, input.Repeat) switch
        {
            (ScoreKind.PrevToken, _) => HeadScores.PreviousToken(model, tokens),
            (ScoreKind.Induction, { } layout) => HeadScores.Induction(model, tokens, layout.Length),
            (ScoreKind.Induction, null) => HeadScores.Induction(model, tokens),
            (_, { } layout) => HeadScores.DuplicateToken(model, tokens, layout.Length),
            _ => HeadScores.DuplicateToken(model, tokens),
        };
        return new LayerHeadValue(name, TensorData.Grid(table.Scores)) { Title = $"{name} scores (stripe attention) on {Printer.Print(input.Source)}" };
    }

    public static ExperimentState Detect(DetectStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var model = state.RequireModel().Model;
        var input = state.RequireInput("detect");
        using var scope = NewDisposeScope();
        using var hooks = ModelEdits.Attach(model, state);
        var rows = Enumerable.Range(0, input.Batch).Select(r => input.Row(r, model.Device)).ToList();
        var measure = Keywords.ErrorMeasures.Text(s.ErrorMeasure);
        Tensor scores;
        string what;
        switch (s.Pattern)
        {
            case BuiltinPattern b:
                what = Keywords.BuiltinPatterns.Text(b.Kind);
                scores = HeadDetector.DetectHead(model, rows, what + "_head", null, s.ExcludeBos, s.ExcludeCurrentToken, measure);
                break;
            case PatternName p when state.Bindings.GetValueOrDefault(p.Name) is PatternBinding bound:
                what = p.Name;
                var pattern = tensor(bound.Rows.SelectMany(r => r).Select(v => (float)v).ToArray(), [bound.Rows.Length, bound.Rows.Length]);
                scores = HeadDetector.DetectHead(model, rows, pattern, null, s.ExcludeBos, s.ExcludeCurrentToken, measure);
                break;
            default:
                throw new KeyNotFoundException($"'{s.Pattern}' is not a let-bound detection pattern");
        }
        var options = string.Join(", ", new[] { s.ExcludeBos ? "exclude_bos" : null, s.ExcludeCurrentToken ? "exclude_current" : null, $"error {measure}" }.OfType<string>());
        var value = new LayerHeadValue($"detect {what}", TensorData.Grid(scores))
        {
            Title = $"{what} head detection ({options}) on {Printer.Print(input.Source)}" + (input.Batch > 1 ? $", mean of {input.Batch} rows" : ""),
        };
        return state.WithResult(s, value);
    }

    public static ExperimentState Heads(HeadsStatement s, ExperimentState state)
    {
        state = state.WithModel();
        return state.WithResult(s, new HeadsValue(Resolve(s.Selection, state)) { Title = $"heads {Printer.Print(s.Selection)}" });
    }

    /// <summary>
    /// The heads a selection picks now: `where` conditions read the latest `score` of their kind, or
    /// compute it on the current input when there is none yet.
    /// </summary>
    public static IReadOnlyList<HeadRef> Resolve(Selection selection, ExperimentState state)
    {
        var cfg = state.RequireModel().Config;
        return Selections.Resolve(selection, cfg.NLayers, cfg.NHeads,
            name => state.Bindings.GetValueOrDefault(name) is SelectionBinding b ? b.Heads : throw new KeyNotFoundException($"'{name}' is not a let-bound selection"),
            kind => (state.Scores.GetValueOrDefault(kind) ?? ComputeScores(kind, state)).Values);
    }
}
