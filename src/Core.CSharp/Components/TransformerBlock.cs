using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>
/// One residual block as TransformerLens builds it: sequential (attn then MLP), parallel (GPT-J,
/// NeoX: both read resid_pre) or attention-only, with the block-level hook points
/// (resid_pre, attn_in / q,k,v_input, attn_out, resid_mid, mlp_in, mlp_out, resid_post). With
/// use_normalization_before_and_after (Gemma 2/3) the attention and MLP outputs pass through their own
/// RMSNorm (ln1_post, ln2_post) before hook_attn_out / hook_mlp_out.
/// </summary>
public sealed class TransformerBlock : nn.Module
{
#pragma warning disable IDE1006 // TransformerLens's module names
    public Normalization? ln1, ln2;
    public Normalization? ln1_post, ln2_post;
    public Attention attn;
    public Mlp? mlp;
    /// <summary>
    /// The mixture-of-experts MLP (num_experts set), registered by hand under TransformerLens's name "mlp"
    /// after RegisterComponents (a second field named "mlp" would clash in TorchSharp's field lookup).
    /// </summary>
    public MixtureOfExperts? moe;
#pragma warning restore IDE1006
    readonly HookedTransformerConfig _cfg;
    public readonly HookPoint HookResidPre, HookAttnIn, HookQInput, HookKInput, HookVInput, HookAttnOut,
        HookResidMid, HookMlpIn, HookMlpOut, HookResidPost;

    public TransformerBlock(int layer, HookedTransformerConfig cfg, ScalarType dtype) : base($"blocks.{layer}")
    {
        _cfg = cfg;
        string p = $"blocks.{layer}";
        if (cfg.NormalizationType is string norm)
        {
            ln1 = new Normalization(p + ".ln1", norm, cfg.DModel, cfg.Eps, dtype);
            if (!cfg.AttnOnly) ln2 = new Normalization(p + ".ln2", norm, cfg.DModel, cfg.Eps, dtype);
        }
        // TransformerLens's post-norms are RMSNorm with a weight even when ln1/ln2 are folded (RMSPre).
        if (cfg.UseNormalizationBeforeAndAfter && cfg.NormalizationType is "RMS" or "RMSPre")
        {
            ln1_post = new Normalization(p + ".ln1_post", "RMS", cfg.DModel, cfg.Eps, dtype);
            if (!cfg.AttnOnly) ln2_post = new Normalization(p + ".ln2_post", "RMS", cfg.DModel, cfg.Eps, dtype);
        }
        attn = new Attention(p + ".attn", layer, cfg, dtype);
        if (!cfg.AttnOnly && cfg.NumExperts is null) mlp = new Mlp(p + ".mlp", cfg, dtype);
        HookResidPre = new(p + ".hook_resid_pre"); HookAttnIn = new(p + ".hook_attn_in");
        HookQInput = new(p + ".hook_q_input"); HookKInput = new(p + ".hook_k_input"); HookVInput = new(p + ".hook_v_input");
        HookAttnOut = new(p + ".hook_attn_out"); HookResidMid = new(p + ".hook_resid_mid");
        HookMlpIn = new(p + ".hook_mlp_in"); HookMlpOut = new(p + ".hook_mlp_out"); HookResidPost = new(p + ".hook_resid_post");
        RegisterComponents();
        if (!cfg.AttnOnly && cfg.NumExperts is not null)
        {
            moe = new MixtureOfExperts(p + ".mlp", cfg, dtype);
            register_module("mlp", moe);
        }
    }

    /// <summary>The block's hook points in the order the forward pass reaches them.</summary>
    public IEnumerable<HookPoint> HookPoints
    {
        get
        {
            // Every hook point exists whatever the config (as in TransformerLens); the config decides which fire.
            yield return HookResidPre;
            yield return HookAttnIn;
            yield return HookQInput; yield return HookKInput; yield return HookVInput;
            if (ln1 is not null) foreach (var h in ln1.HookPoints) yield return h;
            foreach (var h in attn.HookPoints) yield return h;
            if (ln1_post is not null) foreach (var h in ln1_post.HookPoints) yield return h;
            yield return HookAttnOut;
            if (HasMlp)
            {
                if (!_cfg.ParallelAttnMlp) yield return HookResidMid;
                yield return HookMlpIn;
                if (ln2 is not null) foreach (var h in ln2.HookPoints) yield return h;
                foreach (var h in mlp?.HookPoints ?? moe!.HookPoints) yield return h;
                if (ln2_post is not null) foreach (var h in ln2_post.HookPoints) yield return h;
                yield return HookMlpOut;
            }
            yield return HookResidPost;
        }
    }

    /// <param name="padding">the batch's attention mask, or null for unpadded input.</param>
    /// <param name="shortformerPosEmbed">shortformer models: hook_pos_embed, added to the query and key
    /// inputs (after ln1) and never to the residual stream, as TransformerLens does.</param>
    public Tensor forward(Tensor residual, KeyValueCacheEntry? past = null, PaddingMask? padding = null, Tensor? shortformerPosEmbed = null)
    {
        using var scope = NewDisposeScope();
        var residPre = HookResidPre.Run(residual);
        Tensor attnOut;
        if (_cfg.UseSplitQkvInput || _cfg.UseAttnIn)
        {
            var attnIn = _cfg.UseAttnIn ? HookAttnIn.Run(PerHead(residPre, _cfg.NHeads)) : residPre;
            Tensor q = attnIn, k = attnIn, v = attnIn;
            if (_cfg.UseSplitQkvInput)
            {
                q = HookQInput.Run(PerHead(residPre, _cfg.NHeads));
                k = HookKInput.Run(PerHead(residPre, _cfg.KvHeads));
                v = HookVInput.Run(PerHead(residPre, _cfg.KvHeads));
            }
            var positions = shortformerPosEmbed?.unsqueeze(2);   // one copy per head
            attnOut = attn.forward(WithPositions(Norm1(q), positions), WithPositions(Norm1(k), positions), Norm1(v), past, padding);
        }
        else if (shortformerPosEmbed is not null)
        {
            var normed = Norm1(residPre);
            var queryKey = normed + shortformerPosEmbed;
            attnOut = attn.forward(queryKey, queryKey, normed, past, padding);
        }
        else
        {
            var normed = Norm1(residPre);
            attnOut = attn.forward(normed, normed, normed, past, padding);
        }
        if (ln1_post is not null) attnOut = ln1_post.forward(attnOut);
        attnOut = HookAttnOut.Run(attnOut);

        Tensor residPost;
        if (!HasMlp)
            residPost = residPre + attnOut;
        else if (_cfg.ParallelAttnMlp)
        {
            var mlpIn = _cfg.UseHookMlpIn ? HookMlpIn.Run(residPre.clone()) : residPre;
            var mlpOut = HookMlpOut.Run(PostMlp(MlpForward(Norm2(mlpIn))));
            residPost = residPre + attnOut + mlpOut;
        }
        else
        {
            var residMid = HookResidMid.Run(residPre + attnOut);
            var mlpIn = _cfg.UseHookMlpIn ? HookMlpIn.Run(residMid.clone()) : residMid;
            var mlpOut = HookMlpOut.Run(PostMlp(MlpForward(Norm2(mlpIn))));
            residPost = residMid + mlpOut;
        }
        return HookResidPost.Run(residPost).MoveToOuterDisposeScope();
    }

    bool HasMlp => mlp is not null || moe is not null;
    Tensor MlpForward(Tensor x) => mlp?.forward(x) ?? moe!.forward(x);

    Tensor Norm1(Tensor x) => ln1 is null ? x : ln1.forward(x);
    static Tensor WithPositions(Tensor x, Tensor? positions) => positions is null ? x : x + positions;
    Tensor Norm2(Tensor x) => ln2 is null ? x : ln2.forward(x);
    Tensor PostMlp(Tensor x) => ln2_post is null ? x : ln2_post.forward(x);

    /// <summary>[b, p, d] → [b, p, heads, d] (a broadcast view copied so hooks may edit one head).</summary>
    static Tensor PerHead(Tensor x, int heads) => x.unsqueeze(2).expand(x.shape[0], x.shape[1], heads, x.shape[2]).clone();
}
