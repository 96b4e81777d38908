using Lens.Datasets;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// <c>cache load "DIR"</c> with an activation dataset's folder: this run's activations against the dataset's stored
/// ones for the rows the input came from (<c>input dataset "DIR" rows A..B</c>), one row per hook column of the
/// dataset that the model has (and the filter keeps), in the table a safetensors <c>cache load</c> gives.
/// </summary>
public static class DatasetCacheLoad
{
    /// <summary>
    /// The dataset, once the input is known to be rows of it with the same tokens; a message naming the
    /// folder, the rows and the first differing token otherwise.
    /// </summary>
    public static (ActivationDataset Data, DatasetInput Rows) Check(ExperimentEnvironment environment, string asWritten,
        ExperimentInput input)
    {
        if (input.Source is not DatasetInput rows)
            throw new ArgumentException(
                $"'{asWritten}' is a folder, so `cache load` compares an activation dataset's rows; "
                                        + $"the input must be rows of it (`input dataset \"{asWritten}\" rows A..B`), "
                                        + $"not `{Printer.Print(input.Source)}`");
        var data = DatasetRows.Open(environment, asWritten);
        var stored = DatasetRows.TokenIds(environment, rows with { Path = asWritten });
        for (int r = 0; r < stored.Length; r++)
        {
            if (r >= input.Ids.Length || stored[r].Length != input.Ids[r].Length)
                throw new ArgumentException($"rows {DatasetRows.RowsText(rows)} of dataset '{asWritten}' are " +
                    $"[{stored.Length}, {stored[0].Length}] tokens; the input is " +
                    $"[{input.Ids.Length}, {input.Ids[0].Length}]");
            for (int p = 0; p < stored[r].Length; p++)
                if (stored[r][p] != input.Ids[r][p])
                    throw new ArgumentException($"row {rows.FirstRow + r} of dataset '{asWritten}' holds " +
                        $"token {stored[r][p]} at position {p}; the input has {input.Ids[r][p]} there: the input is " +
                        $"not the dataset's rows");
        }
        return (data, rows);
    }

    internal static ExperimentState Compare(CacheStatement s, ExperimentState state, StagePass pass,
        Func<string, bool> filter)
    {
        var (model, input, tokens) = (pass.Model, pass.Input, pass.Tokens);
        var (data, rows) = Check(state.Environment, s.Path, input);
        var hooks = data.Columns.Select(c => c.Name)
            .Where(n => n != DatasetRows.TokenColumn && model.HookDict.ContainsKey(n) && filter(n)).ToList();
        // The harvest's own names filter: the same set of hooks takes the same attention path (hook_pattern cached or
        // not).
        using var current =
            model.RunWithCache(tokens, ReturnType.Logits, hooks.Contains, attentionMask: pass.AttentionMask);
        var table = new List<object[]>();
        foreach (var name in hooks)
        {
            using var scope = NewDisposeScope();
            var saved = DatasetRows.Read(state.Environment, data, name, rows.FirstRow, rows.Rows, "cache");
            var now = current.Cache[name];
            double diff = CacheDifference.Max(now, saved);
            table.Add([name, "[" + string.Join(", ", saved.shape) + "]", diff]);
        }
        return state.WithResult(s, new TableValue(["activation", "shape", "max |difference|"], [.. table])
        {
            Title = $"dataset {s.Path} against this run on {Printer.Print(input.Source)} (nan: the shapes differ)",
        });
    }
}
