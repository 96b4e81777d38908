using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

#pragma warning disable IDE1006 // TransformerLens's parameter names

/// <summary>Token embedding: <c>W_E[tokens]</c>, W_E [d_vocab, d_model].</summary>
public sealed class Embed : nn.Module
{
    public Parameter W_E;
    public Embed(HookedTransformerConfig cfg, ScalarType dtype) : base("embed")
    {
        W_E = new Parameter(empty(cfg.DVocab, cfg.DModel, dtype: dtype));
        RegisterComponents();
    }
    public Tensor forward(Tensor tokens) => W_E.index_select(0, tokens.flatten()).view([.. tokens.shape, W_E.shape[1]]);
}

/// <summary>Learned absolute positions: <c>W_pos[offset : offset + pos]</c> broadcast over the batch.</summary>
public sealed class PosEmbed : nn.Module
{
    public Parameter W_pos;
    public PosEmbed(HookedTransformerConfig cfg, ScalarType dtype) : base("pos_embed")
    {
        W_pos = new Parameter(empty(cfg.NCtx, cfg.DModel, dtype: dtype));
        RegisterComponents();
    }
    public Tensor forward(long batch, long pos, long offset)
    {
        if (offset + pos > W_pos.shape[0])
            throw new ArgumentException(
                $"sequence of {offset + pos} positions exceeds the model's context n_ctx = {W_pos.shape[0]}");
        return W_pos.narrow(0, offset, pos).unsqueeze(0).expand(batch, pos, W_pos.shape[1]);
    }

    /// <summary>
    /// With an attention mask (TransformerLens's PosEmbed): <c>W_pos[position_ids]</c> of the new positions,
    /// exactly 0 at pad positions.
    /// </summary>
    public Tensor forward(PaddingMask padding)
    {
        if (padding.Real.shape[1] > W_pos.shape[0])
            throw new ArgumentException(
                $"sequence of {padding.Real.shape[1]} positions exceeds the model's context n_ctx = {W_pos.shape[0]}");
        var ids = padding.QueryPositionIds;
        var embedded = W_pos.index_select(0, ids.flatten()).view(ids.shape[0], ids.shape[1], W_pos.shape[1]);
        return embedded.masked_fill(padding.QueryReal.logical_not().unsqueeze(-1), 0.0);
    }
}

/// <summary>Logits: <c>x @ W_U + b_U</c>, W_U [d_model, d_vocab_out] (before any output soft cap).</summary>
public sealed class Unembed : nn.Module
{
    public Parameter W_U;
    public Parameter b_U;
    public readonly HookPoint HookIn, HookOut;
    public Unembed(HookPointFactory hooks, HookedTransformerConfig cfg, ScalarType dtype) : base(hooks.Path)
    {
        HookIn = hooks.Create("hook_in");
        HookOut = hooks.Create("hook_out");
        W_U = new Parameter(empty(cfg.DModel, cfg.DVocabOut, dtype: dtype));
        b_U = new Parameter(zeros(cfg.DVocabOut, dtype: dtype));
        RegisterComponents();
    }
    public Tensor forward(Tensor x)
    {
        x = HookIn.Run(x);
        return HookOut.Run(addmm(b_U, x.reshape(-1, x.shape[^1]), W_U, 1, 1).view([.. x.shape[..^1], W_U.shape[1]]));
    }
}
