using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Which positions (or other indices along one axis) an analysis keeps: TransformerLens's
/// <c>utils.Slice</c>. <see cref="At"/> picks one index and drops the axis (Python's <c>x[..., i, :]</c>);
/// <see cref="Range"/> keeps a half-open range; <see cref="Of"/> keeps a list of indices; <see cref="All"/>
/// keeps everything. Negative indices count from the end.
/// </summary>
public sealed class PositionSlice
{
    enum Kind { All, Single, Range, List }

    readonly Kind _kind;
    readonly long _start;
    readonly long? _stop;
    readonly long[] _indices = [];

    PositionSlice(Kind kind, long start = 0, long? stop = null, long[]? indices = null)
    {
        _kind = kind; _start = start; _stop = stop; _indices = indices ?? [];
    }

    public static PositionSlice All { get; } = new(Kind.All);

    /// <summary>One index; the axis is removed from the result.</summary>
    public static PositionSlice At(long index) => new(Kind.Single, index);

    /// <summary>Indices start (inclusive) to stop (exclusive; null = to the end), as Python's
    /// <c>start:stop</c>.</summary>
    public static PositionSlice Range(long start, long? stop = null) => new(Kind.Range, start, stop);

    /// <summary>These indices, in this order; the axis is kept.</summary>
    public static PositionSlice Of(params long[] indices) => new(Kind.List, indices: indices);

    /// <summary>Whether the slice removes its axis (a single index).</summary>
    public bool DropsAxis => _kind == Kind.Single;

    public bool IsAll => _kind == Kind.All;

    /// <summary>The slice applied along <paramref name="dim"/> (negative counts from the end); a new tensor the caller
    /// owns.</summary>
    public Tensor Apply(Tensor x, long dim = -2)
    {
        if (x.dim() == 0) throw new ArgumentException("cannot slice a scalar tensor");
        long d = dim < 0 ? dim + x.dim() : dim;
        if (d < 0 || d >= x.dim())
            throw new ArgumentException(
                $"slice axis {dim} is out of range for a tensor of shape [{string.Join(", ", x.shape)}]");
        long size = x.shape[d];
        switch (_kind)
        {
            case Kind.All:
                return x.alias();
            case Kind.Single:
                return x.select(d, Normalise(_start, size));
            case Kind.Range:
            {
                long start = Clamp(_start, size), stop = _stop is long s ? Clamp(s, size) : size;
                return x.narrow(d, start, Math.Max(0, stop - start));
            }
            default:
            {
                var idx = _indices.Select(i => Normalise(i, size)).ToArray();
                using var index = tensor(idx, dtype: ScalarType.Int64, device: x.device);
                return x.index_select(d, index);
            }
        }
    }

    /// <summary>The indices kept out of an axis of <paramref name="size"/> elements, in order.</summary>
    public long[] Indices(long size) => _kind switch
    {
        Kind.All => Enumerable.Range(0, checked((int)size)).Select(i => (long)i).ToArray(),
        Kind.Single => [Normalise(_start, size)],
        Kind.Range => RangeIndices(size),
        _ => _indices.Select(i => Normalise(i, size)).ToArray(),
    };

    long[] RangeIndices(long size)
    {
        long start = Clamp(_start, size), stop = _stop is long s ? Clamp(s, size) : size;
        var list = new List<long>();
        for (long i = start; i < stop; i++) list.Add(i);
        return [.. list];
    }

    static long Normalise(long i, long size)
    {
        long j = i < 0 ? i + size : i;
        if (j < 0 || j >= size)
            throw new ArgumentOutOfRangeException(nameof(i),
                $"index {i} is out of range for an axis of {size} elements");
        return j;
    }

    // Python slice bounds: negative counts from the end, then clamped into [0, size].
    static long Clamp(long i, long size) => Math.Clamp(i < 0 ? i + size : i, 0, size);

    public override string ToString() => _kind switch
    {
        Kind.All => "[:]",
        Kind.Single => $"[{_start}]",
        Kind.Range => $"[{_start}:{_stop?.ToString(CultureInfo.InvariantCulture) ?? ""}]",
        _ => $"[{string.Join(", ", _indices)}]",
    };
}
