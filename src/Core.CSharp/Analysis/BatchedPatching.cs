using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// A patching sweep whose cells run as the rows of batched forwards, with the same results as one forward per
/// cell. The cells of one layer share everything below it: each chunk of them starts at that layer
/// (start_at_layer) from the corrupted run's residual stream, tiled once per cell, and the hook patches each
/// row's slice of the activation with that cell's piece of the clean one. The forward stops after the last
/// block and only the logits the metric reads are computed (<see cref="PatchingOptions.MetricReads"/>). Chunks
/// hold as many cells as fit <see cref="PatchingOptions.MemoryBudgetBytes"/>, split evenly.
/// A model with hooks already attached (an intervention, a spliced SAE) runs one cell per forward instead: a
/// hook may depend on the batch. Shortformer models start every chunk from the tokens (start_at_layer would
/// lose their positions). With an attention mask, every chunk runs with the mask tiled once per cell and only real
/// entries are patched (pads keep the corrupted values), as <see cref="Patching.Generic"/>'s one-cell path does.
/// </summary>
public static class BatchedPatching
{
    /// <summary>The metric of each cell, in the flat order of <see cref="Patching.Generic"/> (last axis
    /// fastest).</summary>
    internal static double[] Sweep(HookedTransformer model, Tensor corruptedTokens, ActivationCache cleanCache,
        Func<Tensor, double> metric,
        string activationName, long[] sizes, PatchSetter setter, PatchingOptions options, Tensor? attentionMask = null)
    {
        var cfg = model.Config;
        var reads = options.MetricReads ?? LogitsRead.All;
        long batch = corruptedTokens.shape[0], pos = corruptedTokens.shape[1], vocab = cfg.DVocabOut;
        var values = new double[sizes.Aggregate(1L, (p, s) => p * s)];
        long perLayer = values.Length / sizes[0];
        using var scope = NewDisposeScope();
        bool fromTokens = cfg.PositionalEmbedding == PositionalEmbeddingKind.Shortformer;
        Tensor[]? residPre = fromTokens ? null : CorruptedResiduals(model, corruptedTokens, attentionMask);
        long maxRows = RowsPerForward(cfg, batch, pos, reads, options.MemoryBudgetBytes);
        long chunks = (perLayer + maxRows - 1) / maxRows, rowsPerChunk = (perLayer + chunks - 1) / chunks;
        for (int layer = 0; layer < sizes[0]; layer++)
        {
            var hookName = ActName.Get(activationName, layer);
            if (!cleanCache.TryGetValue(hookName, out var clean))
                throw new KeyNotFoundException(
                    $"the clean cache has no '{hookName}' (cache it to patch {activationName})");
            int start = fromTokens ? 0 : model.Hook(hookName).Layer ?? 0;
            for (long first = 0; first < perLayer; first += rowsPerChunk)
            {
                using var chunkScope = NewDisposeScope();
                long rows = Math.Min(rowsPerChunk, perLayer - first);
                var cells = new long[rows][];
                for (long r = 0; r < rows; r++) cells[r] = Unflatten(layer * perLayer + first + r, sizes);
                var chunkMask = attentionMask?.repeat(rows, 1);
                Tensor? Patch(Tensor corrupted, HookPoint hook)
                {
                    if (corrupted.shape[0] != rows * batch
                        || !corrupted.shape.AsSpan(1).SequenceEqual(clean.shape.AsSpan(1)) || clean.shape[0] != batch)
                        throw new ArgumentException($"{hook.Name}: the corrupted activation " +
                            $"[{string.Join(", ", corrupted.shape[1..])}] and the clean one " +
                            $"[{string.Join(", ", clean.shape[1..])}] differ in shape (clean and corrupted inputs " +
                            $"must have the same shape)");
                    var patched = corrupted.clone();
                    var source = clean.to(patched.dtype);
                    for (long r = 0; r < rows; r++)
                    {
                        using var row = patched.narrow(0, r * batch, batch);
                        setter(row, cells[r], source);
                    }
                    if (chunkMask is null) return patched;
                    using var real = MaskedEntries.Real(patched, hook.Name, chunkMask);
                    return where(real, patched, corrupted);
                }
                var input = fromTokens ? corruptedTokens.repeat(rows, 1) : residPre![start].repeat(rows, 1, 1);
                Tensor logits;
                using (model.Hooks((hookName, Patch)))
                using (var output = model.Forward(input, ReturnType.Logits, attentionMask: chunkMask,
                    startAtLayer: fromTokens ? null : start, stopAtLayer: cfg.NLayers))
                    logits = model.ReadLogits(output.Residual!, reads);
                for (long r = 0; r < rows; r++)
                {
                    using var rowScope = NewDisposeScope();
                    var rowLogits = reads.Expand(logits.narrow(0, r * batch, batch), pos, vocab);
                    double value = metric(rowLogits);
                    if (double.IsNaN(value) && !reads.IsAll)
                        throw new ArgumentException($"the metric gave NaN on the logits it declares it reads " +
                            $"({reads}): it reads other logits, which a batched sweep does not compute; declare them " +
                            $"in PatchingOptions.MetricReads (null: every logit)");
                    values[layer * perLayer + first + r] = value;
                }
            }
        }
        return values;
    }

    /// <summary>How many cells one batched forward may hold within the memory budget (at least one).</summary>
    public static long RowsPerForward(HookedTransformerConfig cfg, long batch, long pos, LogitsRead reads,
        double budgetBytes)
    {
        int element = MemoryEstimate.ElementBytes(cfg);
        double readLogits = (reads.Positions?.Count ?? pos) * (double)(reads.Tokens?.Count ?? cfg.DVocabOut);
        double row = MemoryEstimate.ForwardBytes(cfg, batch, pos, cacheEveryLayer: false)
            - 3.0 * batch * pos * cfg.DVocabOut * element   // ForwardBytes counts every logit and its log-softmax
            + 2.0 * batch * readLogits * element             // the read logits and their full-shape copy per row
            + 2.0 * batch * pos * cfg.DModel * element;      // the tiled input and the patched activation's copy
        return Math.Max(1, (long)(budgetBytes / Math.Max(row, 1)));
    }

    /// <summary>The corrupted run's residual stream entering each block (hooks already attached stay in
    /// force).</summary>
    static Tensor[] CorruptedResiduals(HookedTransformer model, Tensor tokens, Tensor? attentionMask)
    {
        using var run = model.RunWithCache(tokens, ReturnType.None,
            HookedTransformer.NamesFilter("blocks.*.hook_resid_pre"), attentionMask: attentionMask);
        return Enumerable.Range(0, model.Config.NLayers).Select(l => run.Cache[$"blocks.{l}.hook_resid_pre"].clone())
            .ToArray();
    }

    static long[] Unflatten(long flat, long[] sizes)
    {
        var index = new long[sizes.Length];
        for (int a = sizes.Length - 1; a >= 0; a--) { index[a] = flat % sizes[a]; flat /= sizes[a]; }
        return index;
    }
}
