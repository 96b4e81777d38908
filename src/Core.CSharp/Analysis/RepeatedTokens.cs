using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Random token sequences repeated a number of times (optionally after a BOS token), the input of
/// induction-head experiments: each row is [bos?] t₁..tₙ t₁..tₙ ... (<see cref="Repeats"/> copies).
/// Drawn with Lens's own <see cref="SplitMix64"/> so a seed always gives the same tokens; the tokens are
/// kept here so that results can record exactly what was run. Owns <see cref="Tokens"/>.
/// </summary>
public sealed class RepeatedTokens : IDisposable
{
    RepeatedTokens(Tensor tokens, int length, int repeats, long low, long high, ulong seed, long? bos, bool distinct)
    {
        Tokens = tokens; Length = length; Repeats = repeats; Low = low; High = high; Seed = seed; Bos = bos; Distinct =
            distinct;
    }

    /// <summary>Token ids [batch, (1 if BOS) + length·repeats], int64.</summary>
    public Tensor Tokens { get; }
    /// <summary>The length n of the random block that repeats.</summary>
    public int Length { get; }
    public int Repeats { get; }
    /// <summary>Tokens were drawn from [Low, High).</summary>
    public long Low { get; }
    public long High { get; }
    public ulong Seed { get; }
    public long? Bos { get; }
    public bool Distinct { get; }
    public long Batch => Tokens.shape[0];
    /// <summary>The index of the first random token (1 after a BOS token, else 0).</summary>
    public int Offset => Bos is null ? 0 : 1;

    /// <summary>
    /// Sequences of n tokens drawn uniformly from [0, dVocab), repeated; see <see cref="GenerateInRange"/>.
    /// </summary>
    public static RepeatedTokens Generate(long dVocab, int n, int repeats = 2, int batch = 1, ulong seed = 0,
        long? bos = null, bool distinct = false) =>
        GenerateInRange(0, dVocab, n, repeats, batch, seed, bos, distinct);

    /// <summary>
    /// Repeated random tokens for a model: BOS first when the model prepends one, ids drawn from the
    /// range its config records as its synthetic curriculum's (<c>lens_random_token_range</c>; the
    /// embedded demo model has one), else from the whole vocabulary as TransformerLens's demos do.
    /// </summary>
    public static RepeatedTokens ForModel(HookedTransformer model, int n, int repeats = 2, int batch = 1,
        ulong seed = 0)
    {
        var cfg = model.Config;
        long? bos = cfg.DefaultPrependBos && model.Tokenizer?.BosTokenId is int b ? b : null;
        var (low, high) = cfg.RandomTokenRange is [var lo, var hi] ? (lo, hi)
            : (0L, bos is long id && id == cfg.DVocab - 1 ? cfg.DVocab - 1 : cfg.DVocab);
        return GenerateInRange(low, high, n, repeats, batch, seed, bos);
    }

    /// <summary>
    /// Row by row, n tokens are drawn from [low, high): independently (low + NextBelow(high − low)), or,
    /// when <paramref name="distinct"/>, as the first n entries of a Fisher–Yates shuffle of the range
    /// (for i = 0..n−1: j = i + NextBelow(size − i), swap). The draws come from one
    /// <see cref="SplitMix64"/> seeded with <paramref name="seed"/>, in that order. The block is then
    /// repeated <paramref name="repeats"/> times, after <paramref name="bos"/> if given.
    /// </summary>
    public static RepeatedTokens GenerateInRange(long low, long high, int n, int repeats = 2, int batch = 1,
        ulong seed = 0, long? bos = null, bool distinct = false)
    {
        if (high <= low) throw new ArgumentException($"empty token range [{low}, {high})");
        if (low < 0) throw new ArgumentException($"token ids cannot be negative (range starts at {low})");
        if (n <= 0)
            throw new ArgumentOutOfRangeException(nameof(n), $"the repeated block needs at least one token, got {n}");
        if (repeats <= 0)
            throw new ArgumentOutOfRangeException(nameof(repeats), $"repeats must be positive, got {repeats}");
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), $"batch must be positive, got {batch}");
        long size = high - low;
        if (distinct && n > size)
            throw new ArgumentException($"cannot draw {n} distinct tokens from a range of {size}");
        var rng = new SplitMix64(seed);
        int offset = bos is null ? 0 : 1, width = offset + n * repeats;
        var ids = new long[batch * width];
        var block = new long[n];
        long[]? pool = distinct ? new long[size] : null;
        for (int b = 0; b < batch; b++)
        {
            if (pool is null)
                for (int i = 0; i < n; i++) block[i] = low + rng.NextBelow(size);
            else
            {
                for (long i = 0; i < size; i++) pool[i] = low + i;
                for (int i = 0; i < n; i++)
                {
                    long j = i + rng.NextBelow(size - i);
                    (pool[i], pool[j]) = (pool[j], pool[i]);
                    block[i] = pool[i];
                }
            }
            int row = b * width;
            if (bos is long t) ids[row] = t;
            for (int r = 0; r < repeats; r++) Array.Copy(block, 0, ids, row + offset + r * n, n);
        }
        var tokens = tensor(ids, [batch, width], dtype: ScalarType.Int64).DetachFromDisposeScope();
        return new RepeatedTokens(tokens, n, repeats, low, high, seed, bos, distinct);
    }

    public void Dispose() => Tokens.Dispose();

    public override string ToString() =>
        $"RepeatedTokens(batch {Batch}, {(Bos is long t ? $"BOS {t} + " : "")}{Length} tokens × {Repeats}, range " +
            $"[{Low}, {High}), seed {Seed}{(Distinct ? ", distinct" : "")})";
}
