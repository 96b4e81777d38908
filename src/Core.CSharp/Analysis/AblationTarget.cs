using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// What to ablate. Each target names the hook points it replaces: a head → its slice of
/// <c>blocks.{l}.attn.hook_z</c> [batch, pos, head, d_head]; an attention layer → <c>hook_attn_out</c>;
/// a whole block → <c>hook_attn_out</c> and <c>hook_mlp_out</c> (the block then adds only what the
/// mode puts there); an MLP → <c>hook_mlp_out</c>; a neuron → its slice of <c>blocks.{l}.mlp.hook_post</c>.
/// </summary>
public abstract record AblationTarget
{
    private AblationTarget() { }

    public sealed record Head(int Layer, int HeadIndex) : AblationTarget;
    public sealed record AttentionLayer(int Layer) : AblationTarget;
    public sealed record Block(int Layer) : AblationTarget;
    public sealed record Mlp(int Layer) : AblationTarget;
    public sealed record Neuron(int Layer, int NeuronIndex) : AblationTarget;

    /// <summary>A hook point and the part of it the target owns: the index along an axis, or all of it.</summary>
    internal sealed record Site(string HookName, int? Axis, long Index)
    {
        public Tensor Part(Tensor activation) => Axis is int a ? activation.select(a, Index) : activation.alias();
    }

    internal IReadOnlyList<Site> Sites(HookedTransformer model)
    {
        var cfg = model.Config;
        int layer = this switch
        {
            Head h => h.Layer,
            AttentionLayer a => a.Layer,
            Block b => b.Layer,
            Mlp m => m.Layer,
            Neuron n => n.Layer,
            _ => -1
        };
        if (layer < 0 || layer >= cfg.NLayers)
            throw new ArgumentOutOfRangeException(nameof(layer),
                $"{this}: layer {layer} is out of range: the model has {cfg.NLayers} layers");
        bool hasMlp = model.blocks[layer].mlp is not null || model.blocks[layer].moe is not null;
        switch (this)
        {
            case Head h:
                if (h.HeadIndex < 0 || h.HeadIndex >= cfg.NHeads)
                    throw new ArgumentOutOfRangeException(nameof(h.HeadIndex),
                        $"{this}: head {h.HeadIndex} is out of range: the model has {cfg.NHeads} heads per layer");
                return [new Site($"blocks.{layer}.attn.hook_z", 2, h.HeadIndex)];
            case AttentionLayer:
                return [new Site($"blocks.{layer}.hook_attn_out", null, 0)];
            case Block:
                return hasMlp
                    ? [new Site($"blocks.{layer}.hook_attn_out", null, 0),
                        new Site($"blocks.{layer}.hook_mlp_out", null, 0)]
                    : [new Site($"blocks.{layer}.hook_attn_out", null, 0)];
            case Mlp:
                if (!hasMlp)
                    throw new InvalidOperationException($"{this}: the model is attention-only (no MLP to ablate)");
                return [new Site($"blocks.{layer}.hook_mlp_out", null, 0)];
            case Neuron n:
                if (!hasMlp)
                    throw new InvalidOperationException($"{this}: the model is attention-only (no MLP neurons)");
                int dMlp = cfg.DMlp ?? 0;
                if (n.NeuronIndex < 0 || n.NeuronIndex >= dMlp)
                    throw new ArgumentOutOfRangeException(nameof(n.NeuronIndex),
                        $"{this}: neuron {n.NeuronIndex} is out of range: the MLP has {dMlp} neurons");
                return [new Site($"blocks.{layer}.mlp.hook_post", -1, n.NeuronIndex)];
            default:
                throw new ArgumentException($"unknown ablation target {this}");
        }
    }
}
