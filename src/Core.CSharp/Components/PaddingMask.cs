using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>
/// A batch's attention mask as TransformerLens uses it: which key positions are real tokens, and the
/// position id of every position, <c>cumsum(mask) - 1</c> clamped at 0 (utils.get_offset_position_ids),
/// so a left-padded text's real tokens sit at positions 0, 1, … as if it were alone. Covers the cached
/// positions and the new ones; the queries are the last <see cref="Queries"/> of them. The tensors live
/// in the forward pass's dispose scope.
/// </summary>
public sealed class PaddingMask
{
    /// <summary>[batch, keys] bool: true on real tokens.</summary>
    public Tensor Real { get; }

    /// <summary>[batch, keys] int64 position ids.</summary>
    public Tensor PositionIds { get; }

    /// <summary>Positions already in the key-value cache (the queries start here).</summary>
    public long Offset { get; }

    public long Queries => Real.shape[1] - Offset;

    PaddingMask(Tensor real, Tensor positionIds, long offset)
    {
        Real = real;
        PositionIds = positionIds;
        Offset = offset;
    }

    /// <summary>From a [batch, keys] mask of 0s and 1s (any integer or bool dtype).</summary>
    public static PaddingMask Create(Tensor mask, long offset)
    {
        var asLong = mask.to(ScalarType.Int64);
        var ids = (asLong.cumsum(1) - 1).clamp_min(0);
        return new PaddingMask(asLong.to(ScalarType.Bool), ids, offset);
    }

    /// <summary>Position ids of the queries [batch, queries].</summary>
    public Tensor QueryPositionIds => PositionIds.narrow(1, Offset, Queries);

    /// <summary>[batch, queries] bool: true on real query tokens.</summary>
    public Tensor QueryReal => Real.narrow(1, Offset, Queries);

    /// <summary>
    /// [batch, 1, queries, keys] bool, true where a query may attend: the causal (or full) pattern given as
    /// <paramref name="blocked"/> [queries, keys] (true = not allowed), and a real key.
    /// </summary>
    public Tensor Allowed(Tensor? blocked)
    {
        var keys = Real.unsqueeze(1).unsqueeze(1);                       // [b, 1, 1, k]
        return blocked is null
            ? keys.expand(Real.shape[0], 1, Queries, Real.shape[1])
            : keys.logical_and(blocked.logical_not());
    }
}
