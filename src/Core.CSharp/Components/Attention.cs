using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

#pragma warning disable IDE1006 // TransformerLens's parameter names

/// <summary>
/// Multi-head causal self-attention as TransformerLens computes it, with grouped-query heads (Llama,
/// Mistral: <c>_W_K</c>, <c>_W_V</c> hold n_key_value_heads heads, repeat-interleaved), rotary
/// positions on the first rotary_dim dims of each head, local windows (GPT-Neo), and an optional
/// key-value cache. Shapes: q/k/v/z [batch, pos, head, d_head]; attn_scores and pattern
/// [batch, head, query_pos, key_pos]; result [batch, pos, head, d_model].
/// </summary>
public sealed class Attention : nn.Module
{
    public Parameter W_Q, W_O, b_Q, b_O;
    public Parameter? W_K, W_V, b_K, b_V;      // full heads
    public Parameter? _W_K, _W_V, _b_K, _b_V;  // grouped-query heads
    public Tensor? rotary_sin, rotary_cos;
    public Normalization? q_norm, k_norm;      // use_qk_norm: RMSNorm over d_head of each head's query / key
    readonly bool _qkNormOverProjection;        // OLMoE: q_norm / k_norm over all heads' queries / keys at once
    readonly HookedTransformerConfig _cfg;
    readonly double _attnScale;
    readonly int? _window;
    readonly bool _causal;
    readonly QkvStorage _qkv;
    public readonly HookPoint HookQ, HookK, HookV, HookZ, HookAttnScores, HookPattern, HookResult, HookRotQ, HookRotK;

    public Attention(HookPointFactory hooks, int layer, HookedTransformerConfig cfg, ScalarType dtype)
        : base(hooks.Path)
    {
        _cfg = cfg;
        int h = cfg.NHeads, d = cfg.DModel, e = cfg.DHead, kv = cfg.KvHeads;
        _qkv = new QkvStorage(h, kv, d, e, dtype);
        W_Q = _qkv.WQ; b_Q = _qkv.BQ;
        W_O = new Parameter(empty(h, e, d, dtype: dtype));
        b_O = new Parameter(zeros(d, dtype: dtype));
        if (cfg.NKeyValueHeads is null) { W_K = _qkv.WK; W_V = _qkv.WV; b_K = _qkv.BK; b_V = _qkv.BV; }
        else { _W_K = _qkv.WK; _W_V = _qkv.WV; _b_K = _qkv.BK; _b_V = _qkv.BV; }
        _attnScale = cfg.AttnScale * (cfg.ScaleAttnByInverseLayerIdx ? layer + 1 : 1);
        _causal = cfg.AttentionDirection == AttentionDirection.Causal;
        if (cfg.IsLocalLayer(layer)) _window = cfg.WindowSize;
        bool rotary = cfg.PositionalEmbedding == PositionalEmbeddingKind.Rotary;
        if (rotary)
        {
            // Gemma 3: local layers have their own base; linear scaling applies to global layers only.
            bool local = _window is not null;
            double rotaryBase = local && cfg.RotaryBaseLocal is double localBase ? localBase : cfg.RotaryBase;
            var (sin, cos) =
                Rotary.SinCos(cfg.RotaryDim!.Value, cfg.NCtx, rotaryBase, cfg.RotaryAdjacentPairs, dtype, cfg,
                local ? 1.0 : cfg.RotaryScalingFactor);
            rotary_sin = sin; rotary_cos = cos;
        }
        // Hook points in the order the forward pass reaches them.
        HookQ = hooks.Create("hook_q"); HookK = hooks.Create("hook_k"); HookV = hooks.Create("hook_v");
        if (cfg.UseQkNorm)
        {
            q_norm = new Normalization(hooks.Under("q_norm"), NormalizationKind.RMS, e, cfg.Eps, dtype);
            k_norm = new Normalization(hooks.Under("k_norm"), NormalizationKind.RMS, e, cfg.Eps, dtype);
        }
        else if (cfg.OriginalArchitecture == OlmoeArchitecture)
        {
            // TransformerLens keys this on original_architecture: q_norm over d_model, k_norm over kv_heads·d_head.
            if (h * e != d)
                throw new ArgumentException($"config field d_head is {e}: OLMoE's q_norm spans d_model ({d}), so " +
                    $"n_heads·d_head must equal it (it is {h * e})");
            q_norm = new Normalization(hooks.Under("q_norm"), NormalizationKind.RMS, d, cfg.Eps, dtype);
            k_norm = new Normalization(hooks.Under("k_norm"), NormalizationKind.RMS, kv * e, cfg.Eps, dtype);
            _qkNormOverProjection = true;
        }
        HookRotQ = hooks.Create("hook_rot_q", listed: rotary); HookRotK = hooks.Create("hook_rot_k", listed: rotary);
        HookAttnScores = hooks.Create("hook_attn_scores"); HookPattern = hooks.Create("hook_pattern");
        HookZ = hooks.Create("hook_z");
        HookResult = hooks.Create("hook_result"); // fires only with use_attn_result, as in TransformerLens
        RegisterComponents();
    }

    public Tensor KeyWeight => (W_K ?? _W_K)!;
    public Tensor ValueWeight => (W_V ?? _W_V)!;
    public Tensor KeyBias => (b_K ?? _b_K)!;
    public Tensor ValueBias => (b_V ?? _b_V)!;

    /// <param name="padding">the batch's attention mask (keys that are pads are never attended; rotary uses
    /// its position ids), or null for unpadded input.</param>
    public Tensor forward(Tensor queryInput, Tensor keyInput, Tensor valueInput, KeyValueCacheEntry? past = null,
        PaddingMask? padding = null)
    {
        using var scope = NewDisposeScope();
        var (q, keys, values, offset) = ProjectQkv(queryInput, keyInput, valueInput, past, padding);
        return Attend(q, keys, values, offset, padding).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Queries [b, qp, h, e] and keys, values [b, kp, h, e] (grouped-query heads repeated to n_heads):
    /// the projections (hook_q, hook_k, hook_v), the per-head q/k norms, the cached keys and values
    /// before these, and rotary (hook_rot_q, hook_rot_k). <c>Offset</c> is the first query's position.
    /// </summary>
    (Tensor Q, Tensor Keys, Tensor Values, long Offset) ProjectQkv(Tensor queryInput, Tensor keyInput,
        Tensor valueInput, KeyValueCacheEntry? past, PaddingMask? padding)
    {
        Tensor q, k, v;
        if (ReferenceEquals(queryInput, keyInput) && ReferenceEquals(keyInput, valueInput) && queryInput.dim() == 3
            && _qkv.Backs(W_Q, KeyWeight, ValueWeight, b_Q, KeyBias, ValueBias))
        {
            var (fq, fk, fv) = _qkv.Project(queryInput);
            (q, k, v) = (HookQ.Run(fq), HookK.Run(fk), HookV.Run(fv));
        }
        else
        {
            q = HookQ.Run(Project(queryInput, W_Q, b_Q));
            k = HookK.Run(Project(keyInput, KeyWeight, KeyBias));
            v = HookV.Run(Project(valueInput, ValueWeight, ValueBias));
        }
        if (q_norm is not null) q = QkNorm(q, q_norm);
        if (k_norm is not null) k = QkNorm(k, k_norm);
        long offset = past?.Length ?? 0;
        if (past is not null) (k, v) = past.Append(k, v);
        if (padding is not null && padding.Real.shape[1] != k.shape[1])
            throw new ArgumentException(
                $"attention mask covers {padding.Real.shape[1]} positions but there are {k.shape[1]} keys");
        if (rotary_sin is not null && padding is null)
        {
            q = HookRotQ.Run(Rotary.Apply(q, rotary_sin, rotary_cos!, offset, _cfg.RotaryAdjacentPairs));
            k = HookRotK.Run(Rotary.Apply(k, rotary_sin, rotary_cos!, 0, _cfg.RotaryAdjacentPairs));
        }
        else if (rotary_sin is not null)
        {
            q = HookRotQ.Run(Rotary.ApplyAt(q, rotary_sin, rotary_cos!, padding!.QueryPositionIds,
                _cfg.RotaryAdjacentPairs));
            k = HookRotK.Run(Rotary.ApplyAt(k, rotary_sin, rotary_cos!, padding.PositionIds, _cfg.RotaryAdjacentPairs));
        }
        int groups = _cfg.NHeads / _cfg.KvHeads;
        return groups == 1
            ? (q, k, v, offset)
            : (q, k.repeat_interleave(groups, 2), v.repeat_interleave(groups, 2), offset);
    }

    /// <summary>
    /// The attention output [b, qp, d_model] of queries, keys and values: the pattern over the keys (one fused
    /// kernel when nobody watches it, else scores, masks, soft cap and softmax through their hook points),
    /// z (hook_z), and z W_O + b_O (per head through hook_result with use_attn_result).
    /// </summary>
    Tensor Attend(Tensor q, Tensor keys, Tensor values, long offset, PaddingMask? padding)
    {
        // [b, qp, h, e]
        var z =
            HookZ.Run((CanFuse(q, offset, padding)
                ? FusedAttention(q, keys, values, offset, padding)
                : ExplicitAttention(q, keys, values, offset, padding)).transpose(1, 2));
        long b = z.shape[0], p = z.shape[1];
        if (_cfg.UseAttnResult)
        {
            var result = HookResult.Run(einsum("bphe,hed->bphd", z, W_O));
            return result.sum(2) + b_O;
        }
        return addmm(b_O, z.reshape(b * p, -1), W_O.reshape(-1, W_O.shape[2]), 1, 1).view(b, p, -1);
    }

    /// <summary>A q/k norm: over the whole projection for OLMoE, else per head.</summary>
    Tensor QkNorm(Tensor x, Normalization norm) =>
        _qkNormOverProjection ? ProjectionNorm(x, norm) : PerHeadNorm(x, norm);

    /// <summary>
    /// TransformerLens's _apply_qk_norm: the norm over d_head of x [b, p, heads, d_head] flattened to
    /// [b·p·heads, d_head], so its hook_scale is [b·p·heads, 1] (rows ordered batch, position, head).
    /// </summary>
    static Tensor PerHeadNorm(Tensor x, Normalization norm)
    {
        using var scope = NewDisposeScope();
        return norm.forward(x.reshape(-1, x.shape[3])).view(x.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// OLMoE's q/k norm (TransformerLens's OLMo branch of AbstractAttention.forward): x [b, p, heads, d_head]
    /// normalised as [b, p, heads·d_head], so its hook_scale is [b, p, 1].
    /// </summary>
    static Tensor ProjectionNorm(Tensor x, Normalization norm)
    {
        using var scope = NewDisposeScope();
        return norm.forward(x.reshape(x.shape[0], x.shape[1], -1)).view(x.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The original_architecture whose q/k norms span the whole projection, as in TransformerLens's attention
    /// (which does the same for OLMo 2 and 3; those also get post-norm blocks there and are refused in
    /// ConfigValueDomains).
    /// </summary>
    public const string OlmoeArchitecture = "OlmoeForCausalLM";

    /// <summary>
    /// Whether attention may run as one fused kernel (scaled_dot_product_attention): nobody hooks the
    /// scores or the pattern (which the kernel never materialises), full-precision weights, no local
    /// window, no soft cap on the scores, and a mask the kernel can express (none, causal from position 0,
    /// one new query against cached keys, or any of these with a padding mask).
    /// </summary>
    bool CanFuse(Tensor q, long offset, PaddingMask? padding) =>
        !HookAttnScores.HasHooks && !HookPattern.HasHooks && _window is null && _cfg.AttnScoresSoftCap <= 0
        && q.dtype is ScalarType.Float32 or ScalarType.Float64
        && (!_causal || offset == 0 || q.shape[1] == 1 || padding is not null);

    /// <summary>z [b, h, qp, e] by scaled_dot_product_attention.</summary>
    Tensor FusedAttention(Tensor q, Tensor keys, Tensor values, long offset, PaddingMask? padding)
    {
        var qh = q.permute(0, 2, 1, 3);
        // The kernel scales by 1/sqrt(d_head); TransformerLens divides by attn_scale.
        var rescale = Math.Sqrt(q.shape[3]) / _attnScale;
        if (Math.Abs(rescale - 1.0) > 1e-12) qh = qh * rescale;
        if (padding is not null)
        {
            var allowed = padding.Allowed(_causal ? Mask(q.shape[1], keys.shape[1], offset, q.device) : null);
            var z = nn.functional.scaled_dot_product_attention(qh, keys.permute(0, 2, 1, 3), values.permute(0, 2, 1, 3),
                allowed);
            // A query with no key to attend (a leading pad) gets a zero pattern in TransformerLens, so z = 0.
            return z.masked_fill(allowed.any(-1, keepdim: true).logical_not(), 0.0);
        }
        bool causal = _causal && offset == 0 && q.shape[1] > 1;
        return nn.functional.scaled_dot_product_attention(qh, keys.permute(0, 2, 1, 3), values.permute(0, 2, 1, 3),
            is_casual: causal);
    }

    /// <summary>z [b, h, qp, e] with attn_scores and pattern computed explicitly, through their hook points.</summary>
    Tensor ExplicitAttention(Tensor q, Tensor keys, Tensor values, long offset, PaddingMask? padding)
    {
        var lowPrecision = q.dtype is not (ScalarType.Float32 or ScalarType.Float64);
        var qh = (lowPrecision ? q.to(ScalarType.Float32) : q).permute(0, 2, 1, 3);   // [b, h, qp, e]
        var kh = (lowPrecision ? keys.to(ScalarType.Float32) : keys).permute(0, 2, 3, 1); // [b, h, e, kp]
        var scores = qh.matmul(kh).div_(_attnScale);
        // TransformerLens caps before masking: cap·tanh(scores/cap).
        if (_cfg.AttnScoresSoftCap > 0)
            scores = scores.div_(_cfg.AttnScoresSoftCap).tanh_().mul_(_cfg.AttnScoresSoftCap);
        if (_causal)
        {
            var blocked = Mask(scores.shape[2], scores.shape[3], offset, scores.device);
            scores.masked_fill_(padding is null ? blocked : padding.Allowed(blocked).logical_not(),
                float.NegativeInfinity);
        }
        scores = HookAttnScores.Run(scores);
        // A row with every key masked gives NaN; TransformerLens turns those into zeros.
        var pattern = scores.softmax(-1);
        // softmax's backward reads its output: no in-place edit under autograd
        pattern = pattern.requires_grad ? pattern.nan_to_num(0.0) : pattern.nan_to_num_(0.0);
        pattern = HookPattern.Run(pattern).to(values.dtype);
        return pattern.matmul(values.permute(0, 2, 1, 3));
    }

    /// <summary>
    /// x [b, p, d] (or per-head [b, p, h, d] with split inputs) times W [h, d, e] plus b [h, e] → [b, p, h, e].
    /// One batched multiply over heads that reads W where it lies (no per-forward copy into a
    /// [d, h·e] matrix); the result is a [b, p, h, e] view of a head-major [h, b, p, e] tensor.
    /// </summary>
    static Tensor Project(Tensor x, Tensor w, Tensor bias)
    {
        long heads = w.shape[0], d = w.shape[1], e = w.shape[2];
        if (x.dim() == 4) return einsum("bphd,hde->bphe", x, w) + bias;
        long b = x.shape[0], p = x.shape[1];
        var rows = x.reshape(1, b * p, d).expand(heads, b * p, d);
        // TorchSharp's Tensor.baddbmm(batch2, mat) is mat + this @ batch2 (its static torch.baddbmm mixes up the
        // order).
        return rows.baddbmm(w, bias.unsqueeze(1)).view(heads, b, p, e).permute(1, 2, 0, 3);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _qkv.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>True where a query may NOT attend: keys after it (causal) or beyond the local window.</summary>
    Tensor Mask(long queries, long keys, long offset, Device device)
    {
        var qpos = arange(offset, offset + queries, device: device).unsqueeze(1);
        var kpos = arange(keys, device: device).unsqueeze(0);
        var masked = kpos > qpos;
        if (_window is int w) masked = masked.logical_or(kpos <= qpos - w);
        return masked;
    }
}
