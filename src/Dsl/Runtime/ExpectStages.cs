namespace Lens.Dsl.Runtime;

/// <summary>
/// `expect TARGET OP NUMBER [within TOL]`: reads the value the target names from the most recent result of
/// its kind in scope and records whether the claim holds. A failing claim does not stop the run:
/// <see cref="Failures"/> lists them afterwards, each at its statement.
/// </summary>
public static class ExpectStages
{
    internal static ExperimentState ExpectText(ExpectTextStatement s, ExperimentState state)
    {
        var (key, cell) = ExpectTargets.Split(s.Target);
        var result = state.Latest.GetValueOrDefault(key)
                     ?? throw new InvalidOperationException($"there is no `{ExpectTargets.Producer(key)}` result in " +
                     $"scope to check: run `{ExpectTargets.Producer(key)}` before the expectation");
        var actual = ExpectTargets.ReadText(cell, result.Value);
        var source = result.Line > 0 ? $"line {result.Line}'s `{result.Text}`" : $"`{result.Text}`";
        return state.WithResult(s,
            new TextExpectationValue(Printer.Print(s.Target), s.Operator, s.Text, actual,
            TextExpectationValue.Holds(actual, s.Operator, s.Text))
            {
                Title = $"expectation on {source}",
            });
    }

    internal static ExperimentState Expect(ExpectStatement s, ExperimentState state)
    {
        var (key, cell) = ExpectTargets.Split(s.Target);
        ResultValue read;
        string source;
        if (state.Latest.GetValueOrDefault(key) is { } result)
        {
            read = result.Value;
            source = result.Line > 0 ? $"line {result.Line}'s `{result.Text}`" : $"`{result.Text}`";
        }
        else if (Keywords.ScoreKinds.TryParse(key, out var kind))
        {
            // Like `where`, a score target with no `score` of its kind in scope reads the scores of the current input.
            state = state.WithModel();
            read = HeadStages.ComputeScores(kind, state);
            source = $"{key} scores of the current input";
        }
        else
            throw new InvalidOperationException($"there is no `{ExpectTargets.Producer(key)}` result in scope to " +
                $"check: run `{ExpectTargets.Producer(key)}` before the expectation");
        var model = state.Model?.Model;
        var (actual, shown) = ExpectTargets.Read(key, cell, read,
            text =>
                model?.ToSingleToken(text)
                    ?? throw new InvalidOperationException("no model is loaded to read a token"));
        var target = Printer.Print(s.Target);
        var value = new ExpectationValue(target, s.Operator, s.Threshold, s.Tolerance, actual, shown,
            ExpectationValue.Holds(actual, s.Operator, s.Threshold, s.Tolerance))
        {
            Title = $"expectation on {source}",
        };
        return state.WithResult(s, value);
    }

    /// <summary>Every expectation of a run that did not hold, as located errors
    /// (`FILE:LINE:COL: expected ..., got ...`), in the order they ran.</summary>
    public static IReadOnlyList<SemanticError> Failures(ExperimentState state) =>
        state.Results.Where(r => r.Value is IExpectation { Passed: false })
            .Select(r => SemanticError.At(state.Environment, r.Statement, ((IExpectation)r.Value).Failure))
            .ToList();

    /// <summary>How many expectations a run checked.</summary>
    public static int Count(ExperimentState state) => state.Results.Count(r => r.Value is IExpectation);
}
