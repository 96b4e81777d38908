using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Weight access with TransformerLens's names and shapes, stacked over layers:
/// W_Q/W_K/W_V [n_layers, n_heads, d_model, d_head], W_O [n_layers, n_heads, d_head, d_model],
/// W_in [n_layers, d_model, d_mlp], W_out [n_layers, d_mlp, d_model], biases likewise.
/// Stacked tensors are new tensors the caller owns; grouped K/V heads are repeat-interleaved to n_heads.
/// </summary>
public sealed partial class HookedTransformer
{
    public Tensor W_E => embed.W_E;
    public Tensor W_U => unembed.W_U;
    public Tensor b_U => unembed.b_U;
    public Tensor W_pos => pos_embed?.W_pos
        ?? throw new InvalidOperationException("this model has no learned positional embedding (W_pos)");

    public Tensor W_Q => Stack(b => b.attn.W_Q);
    public Tensor W_K => Stack(b => Ungroup(b.attn.KeyWeight));
    public Tensor W_V => Stack(b => Ungroup(b.attn.ValueWeight));
    public Tensor W_O => Stack(b => b.attn.W_O);
    public Tensor b_Q => Stack(b => b.attn.b_Q);
    public Tensor b_K => Stack(b => Ungroup(b.attn.KeyBias));
    public Tensor b_V => Stack(b => Ungroup(b.attn.ValueBias));
    public Tensor b_O => Stack(b => b.attn.b_O);
    public Tensor W_in => Stack(b => Mlp(b).W_in);
    public Tensor W_gate =>
        Stack(b => Mlp(b).W_gate ?? throw new InvalidOperationException("this model's MLP is not gated (no W_gate)"));
    public Tensor W_out => Stack(b => Mlp(b).W_out);
    public Tensor b_in => Stack(b => Mlp(b).b_in);
    public Tensor b_out => Stack(b => Mlp(b).b_out);

    Tensor Stack(Func<Components.TransformerBlock, Tensor> select)
    {
        using var scope = NewDisposeScope();
        return stack(blocks.Select(select).ToArray()).detach().MoveToOuterDisposeScope();
    }

    Tensor Ungroup(Tensor t)
    {
        int groups = Config.NHeads / Config.KvHeads;
        return groups == 1 ? t : t.repeat_interleave(groups, 0);
    }

    static Components.Mlp Mlp(Components.TransformerBlock b) =>
        b.mlp ?? throw new InvalidOperationException(b.moe is not null
            ? "this model's MLPs are mixtures of experts: read blocks[l].moe.experts[e] (W_in, W_gate, W_out) instead"
            : "this model is attention-only: it has no MLP weights");
}
