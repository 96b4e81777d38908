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

    public TransformerBlock(HookPointFactory hooks, int layer, HookedTransformerConfig cfg, ScalarType dtype)
        : base(hooks.Path)
    {
        _cfg = cfg;
        var norm = cfg.Normalization;
        bool hasMlp = !cfg.AttnOnly;
        // Hook points in the order the forward pass reaches them; every block-level one exists whatever the
        // config (as in TransformerLens), the config decides which fire.
        HookResidPre = hooks.Create("hook_resid_pre");
        HookAttnIn = hooks.Create("hook_attn_in");
        HookQInput = hooks.Create("hook_q_input"); HookKInput = hooks.Create("hook_k_input"); HookVInput =
            hooks.Create("hook_v_input");
        if (norm != NormalizationKind.None)
            ln1 = new Normalization(hooks.Under("ln1"), norm, cfg.DModel, cfg.Eps, dtype);
        attn = new Attention(hooks.Under("attn"), layer, cfg, dtype);
        // TransformerLens's post-norms are RMSNorm with a weight even when ln1/ln2 are folded (RMSPre).
        bool postNorms =
            cfg.UseNormalizationBeforeAndAfter && norm is NormalizationKind.RMS or NormalizationKind.RMSPre;
        if (postNorms)
            ln1_post = new Normalization(hooks.Under("ln1_post"), NormalizationKind.RMS, cfg.DModel, cfg.Eps, dtype);
        HookAttnOut = hooks.Create("hook_attn_out");
        HookResidMid = hooks.Create("hook_resid_mid", listed: hasMlp && !cfg.ParallelAttnMlp);
        HookMlpIn = hooks.Create("hook_mlp_in", listed: hasMlp);
        MixtureOfExperts? experts = null;
        if (hasMlp)
        {
            if (norm != NormalizationKind.None)
                ln2 = new Normalization(hooks.Under("ln2"), norm, cfg.DModel, cfg.Eps, dtype);
            if (cfg.NumExperts is null) mlp = new Mlp(hooks.Under("mlp"), cfg, dtype);
            else experts = new MixtureOfExperts(hooks.Under("mlp"), cfg, dtype);
            if (postNorms)
                ln2_post =
                    new Normalization(hooks.Under("ln2_post"), NormalizationKind.RMS, cfg.DModel, cfg.Eps, dtype);
        }
        HookMlpOut = hooks.Create("hook_mlp_out", listed: hasMlp);
        HookResidPost = hooks.Create("hook_resid_post");
        RegisterComponents();
        if (experts is not null) register_module("mlp", moe = experts);
    }

    /// <param name="padding">the batch's attention mask, or null for unpadded input.</param>
    /// <param name="shortformerPosEmbed">shortformer models: hook_pos_embed, added to the query and key
    /// inputs (after ln1) and never to the residual stream, as TransformerLens does.</param>
    public Tensor forward(Tensor residual, KeyValueCacheEntry? past = null, PaddingMask? padding = null,
        Tensor? shortformerPosEmbed = null)
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
            attnOut = attn.forward(WithPositions(Norm1(q), positions), WithPositions(Norm1(k), positions), Norm1(v),
                past, padding);
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
    static Tensor PerHead(Tensor x, int heads) =>
        x.unsqueeze(2).expand(x.shape[0], x.shape[1], heads, x.shape[2]).clone();
}
