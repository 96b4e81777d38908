using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Which logits a metric reads: the positions (negative counts from the end; null = every position) and the
/// token columns (null = the whole vocabulary). A patching sweep or a gradient run that knows it computes only
/// these (ln_final and the unembedding of the read positions, the read columns of W_U) and hands the metric a
/// logits tensor of the full shape [batch, pos, d_vocab_out] holding NaN everywhere else, so that a metric that
/// reads outside its declaration gives NaN, which the callers refuse.
/// </summary>
public sealed record LogitsRead(IReadOnlyList<long>? Positions, IReadOnlyList<long>? Tokens)
{
    /// <summary>Every logit (no saving).</summary>
    public static LogitsRead All { get; } = new(null, null);

    /// <summary>One position (e.g. −1, the last) and these token columns (none given: the whole vocabulary).</summary>
    public static LogitsRead At(long position, params long[] tokens) =>
        new([position], tokens.Length == 0 ? null : tokens);

    public bool IsAll => Positions is null && Tokens is null;

    /// <summary>The read positions out of <paramref name="size"/>, from 0, without repeats; refused when out of
    /// range.</summary>
    public long[] PositionIndices(long size) =>
        Positions is null ? Range(size) : Positions.Select(p => Normalise(p, size, "position")).Distinct().ToArray();

    /// <summary>The read token columns out of a vocabulary of <paramref name="size"/>, without repeats; refused when
    /// out of range.</summary>
    public long[] TokenIndices(long size) =>
        Tokens is null
            ? Range(size)
            : Tokens.Select(t => t >= 0 && t < size
                ? t
                : throw new ArgumentOutOfRangeException(nameof(Tokens),
                    $"metric reads token {t}, outside the vocabulary of {size}")).Distinct().ToArray();

    /// <summary>
    /// The full-shape logits [batch, pos, vocab] from the read ones [batch, |positions|, |tokens|], NaN elsewhere;
    /// a new tensor through which gradients flow to <paramref name="read"/>.
    /// </summary>
    public Tensor Expand(Tensor read, long pos, long vocab)
    {
        using var scope = NewDisposeScope();
        long batch = read.shape[0];
        var x = read;
        if (Tokens is not null)
        {
            using var columns = tensor(TokenIndices(vocab), device: read.device);
            x = full([batch, x.shape[1], vocab], double.NaN, dtype: read.dtype, device: read.device)
                .index_copy(2, columns, x);
        }
        if (Positions is not null)
        {
            using var rows = tensor(PositionIndices(pos), device: read.device);
            x = full([batch, pos, vocab], double.NaN, dtype: read.dtype, device: read.device).index_copy(1, rows, x);
        }
        return (ReferenceEquals(x, read) ? x.alias() : x).MoveToOuterDisposeScope();
    }

    public override string ToString() =>
        $"positions {(Positions is null ? "all" : string.Join(", ", Positions))}, " +
            $"tokens {(Tokens is null ? "all" : string.Join(", ", Tokens))}";

    static long[] Range(long n)
    {
        var r = new long[n];
        for (long i = 0; i < n; i++) r[i] = i;
        return r;
    }

    static long Normalise(long i, long size, string what)
    {
        long j = i < 0 ? i + size : i;
        return j >= 0 && j < size
            ? j
            : throw new ArgumentOutOfRangeException(nameof(Positions),
                $"metric reads {what} {i}, out of range for {size} positions");
    }
}
