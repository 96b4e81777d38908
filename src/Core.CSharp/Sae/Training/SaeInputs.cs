using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>Token batches to stream a model's activations over while an SAE trains.</summary>
public static class SaeInputs
{
    /// <summary>
    /// Rows of BOS, then <paramref name="n"/> ids drawn uniformly from the model's random-token range
    /// (<c>lens_random_token_range</c>, else the whole vocabulary), repeated <paramref name="repeats"/> times:
    /// the induction curriculum. Drawn with the training run's generator.
    /// </summary>
    public static IBatchSource RepeatedRandom(HookedTransformer model, int n, int repeats = 2)
    {
        var cfg = model.Config;
        if (n <= 0) throw new SaeException($"repeated random sequences need a block length of at least 1 (got {n})");
        if (repeats <= 0) throw new SaeException($"repeats must be positive (got {repeats})");
        long? bos = cfg.DefaultPrependBos && model.Tokenizer?.BosTokenId is int b ? b : null;
        int width = (bos is null ? 0 : 1) + n * repeats;
        if (width > cfg.NCtx)
            throw new SaeException($"a row of {(bos is null ? "" : "BOS + ")}{n}×{repeats} tokens is {width} long, " +
                $"more than the model's n_ctx {cfg.NCtx}");
        var (low, high) = cfg.RandomTokenRange is [var lo, var hi] ? (lo, hi) : (0L, (long)cfg.DVocab);
        return new GeneratedBatches((batch, g) =>
        {
            using var scope = NewDisposeScope();
            var block = randint(low, high, [batch, n], generator: g);
            var parts = new List<Tensor>();
            if (bos is long id) parts.Add(full([batch, 1L], id, ScalarType.Int64));
            for (int r = 0; r < repeats; r++) parts.Add(block);
            return cat(parts, 1).MoveToOuterDisposeScope();
        });
    }

    /// <summary>
    /// Texts as SAELens's token pipeline batches a dataset (tokenization_and_batching.py, with
    /// begin_batch_token and sequence_separator_token "bos"): each text's tokens (no BOS of its own) follow a
    /// BOS separator in one stream, cut into rows of BOS + context_size − 1 tokens; an incomplete last row is
    /// dropped. Rows are then drawn uniformly with the run's generator.
    /// </summary>
    public static IBatchSource Texts(HookedTransformer model, IEnumerable<string> texts, int contextSize, string where)
    {
        var tokenizer =
            model.Tokenizer ?? throw new SaeException($"{where}: the model has no tokenizer to read texts with");
        var bos = tokenizer.BosTokenId
            ?? throw new SaeException($"{where}: the model's tokenizer has no BOS token to separate texts with");
        if (contextSize < 2 || contextSize > model.Config.NCtx)
            throw new SaeException(
                $"context size {contextSize} must be between 2 and the model's n_ctx {model.Config.NCtx}");
        var stream = new List<long>();
        int count = 0;
        foreach (var text in texts)
        {
            if (text.Length == 0) continue;
            count++;
            stream.Add(bos);
            stream.AddRange(tokenizer.Encode(text).Select(i => (long)i));
        }
        long rows = stream.Count / (contextSize - 1);
        if (rows == 0)
            throw new SaeException($"{where}: {count} non-empty texts make {stream.Count} tokens, fewer than one row " +
                $"of {contextSize - 1} (+ BOS)");
        var ids = new long[rows * contextSize];
        for (long r = 0; r < rows; r++)
        {
            ids[r * contextSize] = bos;
            for (int i = 0; i < contextSize - 1; i++)
                ids[r * contextSize + 1 + i] = stream[(int)(r * (contextSize - 1) + i)];
        }
        return new TensorBatches(tensor(ids, [rows, contextSize]));
    }
}
