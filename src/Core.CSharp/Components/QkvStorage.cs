using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>
/// The query, key and value weights of one attention layer laid out as a single
/// [d_model, (n_heads + 2·kv_heads)·d_head] matrix (and one bias vector), with W_Q, W_K, W_V, b_Q,
/// b_K, b_V as views into it. The parameters keep TransformerLens's names and shapes
/// ([heads, d_model, d_head], [heads, d_head]) and every write to them lands in the shared storage,
/// so the forward can compute q, k and v with one matrix multiply and never copy or re-lay-out a
/// weight. Views are not contiguous: use reshape, not view, on them.
/// </summary>
internal sealed class QkvStorage : IDisposable
{
    readonly Tensor _weight, _bias;
    readonly long _dModel, _heads, _kvHeads, _dHead;

    public Parameter WQ { get; }
    public Parameter WK { get; }
    public Parameter WV { get; }
    public Parameter BQ { get; }
    public Parameter BK { get; }
    public Parameter BV { get; }

    public QkvStorage(int heads, int kvHeads, int dModel, int dHead, ScalarType dtype)
    {
        (_dModel, _heads, _kvHeads, _dHead) = (dModel, heads, kvHeads, dHead);
        long columns = (heads + 2L * kvHeads) * dHead;
        _weight = empty(dModel, columns, dtype: dtype).DetachFromDisposeScope();
        _bias = zeros(columns, dtype: dtype).DetachFromDisposeScope();
        WQ = WeightView(0, heads); WK = WeightView(heads, kvHeads); WV = WeightView(heads + kvHeads, kvHeads);
        BQ = BiasView(0, heads); BK = BiasView(heads, kvHeads); BV = BiasView(heads + kvHeads, kvHeads);
    }

    /// <summary>Heads [first, first + count) as a [count, d_model, d_head] view (owned by the module, outside any
    /// dispose scope).</summary>
    Parameter WeightView(long first, long count)
    {
        using var columns = _weight.narrow(1, first * _dHead, count * _dHead);
        using var split = columns.unflatten(1, [count, _dHead]);
        return Owned(new Parameter(split.permute(1, 0, 2), requires_grad: false));
    }

    Parameter BiasView(long first, long count)
    {
        using var part = _bias.narrow(0, first * _dHead, count * _dHead);
        return Owned(new Parameter(part.view(count, _dHead), requires_grad: false));
    }

    static Parameter Owned(Parameter p) { p.DetachFromDisposeScope(); return p; }

    /// <summary>
    /// Whether these are still the layer's parameters: module conversions (to another dtype or device)
    /// and assignments replace parameter objects, after which the layer must project head by head.
    /// Training also projects head by head, so that gradients reach W_Q, W_K and W_V themselves.
    /// </summary>
    public bool Backs(Tensor wq, Tensor wk, Tensor wv, Tensor bq, Tensor bk, Tensor bv) =>
        ReferenceEquals(wq, WQ) && ReferenceEquals(wk, WK) && ReferenceEquals(wv, WV)
        && ReferenceEquals(bq, BQ) && ReferenceEquals(bk, BK) && ReferenceEquals(bv, BV)
        && !(is_grad_enabled()
        && (WQ.requires_grad || WK.requires_grad || WV.requires_grad || BQ.requires_grad || BK.requires_grad
        || BV.requires_grad));

    /// <summary>x [b, p, d_model] → q [b, p, heads, d_head], k and v [b, p, kv_heads, d_head], views of one addmm's
    /// result.</summary>
    public (Tensor Q, Tensor K, Tensor V) Project(Tensor x)
    {
        long b = x.shape[0], p = x.shape[1];
        var all = addmm(_bias, x.reshape(b * p, _dModel), _weight, 1, 1);
        Tensor Heads(long first, long count) => all.narrow(1, first * _dHead, count * _dHead).view(b, p, count, _dHead);
        return (Heads(0, _heads), Heads(_heads, _kvHeads), Heads(_heads + _kvHeads, _kvHeads));
    }

    public void Dispose() { _weight.Dispose(); _bias.Dispose(); }
}
