using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Lens.Bench;

/// <summary>
/// The baseline for the forward rows: a GPT-2-style forward of the same weights written the obvious
/// way in TorchSharp, with no hook machinery. Weights are laid out once, at construction, as a
/// PyTorch module would hold them (one fused [d_model, 3·heads·d_head] QKV matrix); the forward is
/// layer_norm, one addmm for Q, K and V, scaled_dot_product_attention, addmm, gelu, addmm.
/// </summary>
public sealed class PlainForward : IDisposable
{
    sealed record Layer(Tensor Ln1W, Tensor? Ln1B, Tensor Wqkv, Tensor Bqkv, Tensor Wo, Tensor Bo,
        Tensor Ln2W, Tensor? Ln2B, Tensor Win, Tensor Bin, Tensor Wout, Tensor Bout);

    readonly HookedTransformerConfig _cfg;
    readonly Tensor _wE, _wPos, _wU, _bU;
    readonly Tensor? _lnFW, _lnFB;
    readonly Layer[] _layers;
    readonly double _qScale;
    readonly List<Tensor> _owned = [];

    /// <summary>Why this model has no plain baseline, or null when it has one.</summary>
    public static string? Unsupported(HookedTransformerConfig c)
    {
        if (c.Normalization is not (NormalizationKind.LN or NormalizationKind.LNPre) || c.FinalRms)
            return $"normalization {c.NormalizationType ?? "none"}";
        if (c.PositionalEmbedding != PositionalEmbeddingKind.Standard)
            return $"positional embedding {c.PositionalEmbeddingType}";
        if (c.AttnOnly || c.GatedMlp || c.ParallelAttnMlp || c.NumExperts is not null)
            return "not a sequential attention + MLP block";
        if (c.NKeyValueHeads is not null || c.UseLocalAttn || c.AttentionDirection != AttentionDirection.Causal)
            return "grouped, local or bidirectional attention";
        if (c.Activation is not (ActivationFunction.GeluNew or ActivationFunction.Gelu or ActivationFunction.Relu
            or ActivationFunction.GeluPytorchTanh))
            return $"activation {c.ActFn}";
        if (c.UseSplitQkvInput || c.UseAttnIn || c.UseAttnResult) return "per-head attention inputs or results";
        if (c.ScaleAttnByInverseLayerIdx) return "per-layer attention scale";
        if (c.UseQkNorm || c.AttnScoresSoftCap > 0 || c.OutputLogitsSoftCap > 0) return "query/key norms or soft caps";
        if (HookedTransformer.DtypeOf(c.Dtype) != ScalarType.Float32) return $"dtype {c.Dtype}";
        return null;
    }

    public PlainForward(HookedTransformer model)
    {
        _cfg = model.Config;
        if (Unsupported(_cfg) is string why)
            throw new NotSupportedException($"no plain baseline for this model: {why}");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        _wE = Own(model.embed.W_E.detach());
        _wPos = Own(model.pos_embed!.W_pos.detach());
        _wU = Own(model.unembed.W_U.detach());
        _bU = Own(model.unembed.b_U.detach());
        _lnFW = model.ln_final?.w is { } fw ? Own(fw.detach()) : null;
        _lnFB = model.ln_final?.b is { } fb ? Own(fb.detach()) : null;
        _layers = model.blocks.Select(b =>
        {
            var a = b.attn;
            long d = _cfg.DModel;
            Tensor Heads(Tensor w) => w.detach().permute(1, 0, 2).reshape(d, -1);     // [h, d, e] → [d, h·e]
            var wqkv = Own(cat([Heads(a.W_Q), Heads(a.W_K!), Heads(a.W_V!)], 1).contiguous());
            var bqkv =
                Own(cat([a.b_Q.detach().reshape(-1), a.b_K!.detach().reshape(-1), a.b_V!.detach().reshape(-1)], 0));
            return new Layer(
                Own(b.ln1!.w?.detach() ?? ones(d)), b.ln1.b is { } b1 ? Own(b1.detach()) : null, wqkv, bqkv,
                Own(a.W_O.detach().reshape(-1, d)), Own(a.b_O.detach()),
                Own(b.ln2!.w?.detach() ?? ones(d)), b.ln2.b is { } b2 ? Own(b2.detach()) : null,
                Own(b.mlp!.W_in.detach()), Own(b.mlp.b_in.detach()), Own(b.mlp.W_out.detach()),
                    Own(b.mlp.b_out.detach()));
        }).ToArray();
        // SDPA scales by 1/sqrt(d_head); TransformerLens divides by attn_scale.
        _qScale = Math.Sqrt(_cfg.DHead) / _cfg.AttnScale;
    }

    Tensor Own(Tensor t) { _owned.Add(t); return t.DetachFromDisposeScope(); }

    /// <summary>Logits [batch, pos, d_vocab_out] of int64 tokens [batch, pos].</summary>
    public Tensor Forward(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        using var grad = no_grad();
        long batch = tokens.shape[0], pos = tokens.shape[1], d = _cfg.DModel, h = _cfg.NHeads, e = _cfg.DHead;
        var x = _wE.index_select(0, tokens.flatten()).view(batch * pos, d) + _wPos.narrow(0, 0, pos).repeat(batch, 1);
        foreach (var l in _layers)
        {
            var normed = F.layer_norm(x, [d], l.Ln1W, l.Ln1B, _cfg.Eps);
            var qkv = addmm(l.Bqkv, normed, l.Wqkv, 1, 1).view(batch, pos, 3, h, e).permute(2, 0, 3, 1, 4);
            var q = _qScale == 1.0 ? qkv[0] : qkv[0] * _qScale;
            var z = F.scaled_dot_product_attention(q, qkv[1], qkv[2], is_casual: true);
            x = x + addmm(l.Bo, z.transpose(1, 2).reshape(batch * pos, h * e), l.Wo, 1, 1);
            var hidden = addmm(l.Bin, F.layer_norm(x, [d], l.Ln2W, l.Ln2B, _cfg.Eps), l.Win, 1, 1);
            x = x + addmm(l.Bout, Activate(hidden), l.Wout, 1, 1);
        }
        x = F.layer_norm(x, [d], _lnFW, _lnFB, _cfg.Eps);
        return addmm(_bU, x, _wU, 1, 1).view(batch, pos, -1).MoveToOuterDisposeScope();
    }

    Tensor Activate(Tensor x) => _cfg.Activation switch
    {
        ActivationFunction.Relu => F.relu(x),
        ActivationFunction.Gelu => F.gelu(x),
        _ => F.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
    };

    public void Dispose() { foreach (var t in _owned) t.Dispose(); _owned.Clear(); }
}
