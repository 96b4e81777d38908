namespace Lens.Dsl.Runtime;

/// <summary>How many rows of the input one forward pass of a statement takes, so that its estimated peak fits the
/// memory budget.</summary>
public sealed record ChunkPlan(Statement Statement, int RowsPerChunk, int Chunks)
{
    /// <summary>The statement shows row 0 only (`show pattern`), and runs that row alone.</summary>
    public bool FirstRowOnly { get; init; }

    /// <summary>What `lens check` says of the plan.</summary>
    public string Describe() => FirstRowOnly
        ? "runs on row 0 only, the row it shows (the whole input does not fit the memory budget)"
        : $"runs in {Chunks} chunks of at most {RowsPerChunk} rows (the whole input does not fit the memory budget)";
}

/// <summary>
/// Inputs larger than the memory budget run in chunks of rows: the checks size the chunks from the memory estimate
/// (<see cref="MemoryEstimate"/>: weights plus activations, linear in the rows), and statements whose results are
/// per row or means over rows run chunk by chunk and combine the chunks as one batch would.
/// Each chunk keeps the input's full width (and its rows' pads and mask), so each row computes exactly as in one batch.
/// </summary>
public static class BatchChunks
{
    /// <summary>
    /// The most rows whose forward fits <paramref name="available"/> bytes (all of them when the whole batch fits; 0
    /// when not even one row does).
    /// </summary>
    public static int RowsThatFit(HookedTransformerConfig cfg, int batch, long positions, bool cacheEveryLayer,
        double available)
    {
        double weights = MemoryEstimate.ParameterBytes(cfg),
            perRow = MemoryEstimate.ForwardBytes(cfg, 1, positions, cacheEveryLayer);
        double fit = Math.Floor((available - weights) / perRow);
        return fit >= batch ? batch : fit < 1 ? 0 : (int)fit;
    }

    /// <summary>The input's rows in chunks for a statement, as the checks planned them (one chunk of every row when
    /// they did not).</summary>
    internal static IEnumerable<(int Start, ExperimentInput Rows)> Of(ExperimentState state, Statement statement)
    {
        var input = state.RequireInput(Printer.Print(statement));
        int size = state.Environment.ChunkPlans.TryGetValue(statement, out var plan)
            ? Math.Max(1, plan.RowsPerChunk)
            : input.Batch;
        if (size >= input.Batch) { yield return (0, input); yield break; }
        for (int start = 0; start < input.Batch; start += size)
            yield return (start, input.Slice(start, Math.Min(size, input.Batch - start)));
    }
}
