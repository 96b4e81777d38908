using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Token-to-token (and position-to-position) circuits of attention heads as factored matrices, never
/// forming a vocab×vocab matrix unless <see cref="FactoredMatrix.AB"/> is asked for:
/// full OV = W_E·W_V·W_O·W_U [.., d_vocab, d_vocab_out] (row: source token attended to, column: the
/// logit it raises), full QK = W_E·W_Q·W_Kᵀ·W_Eᵀ [.., d_vocab, d_vocab] (row: query token, column: key token).
/// Without a layer (and head) the result covers every head: [n_layers, n_heads, ..]. As in
/// TransformerLens's demos these ignore biases and layer norms. Results are new matrices: dispose them.
/// </summary>
public static class Circuits
{
    /// <summary>W_E · OV · W_U for every head [n_layers, n_heads, d_vocab, d_vocab_out].</summary>
    public static FactoredMatrix FullOvCircuit(HookedTransformer model) =>
        Sandwich(model, model.OV, () => model.W_E, () => model.W_U);

    /// <summary>W_E · OV[layer, head] · W_U [d_vocab, d_vocab_out].</summary>
    public static FactoredMatrix FullOvCircuit(HookedTransformer model, int layer, int head) =>
        Sandwich(model, Head(model, model.OV, layer, head), () => model.W_E, () => model.W_U);

    /// <summary>W_E · QK · W_Eᵀ for every head [n_layers, n_heads, d_vocab, d_vocab].</summary>
    public static FactoredMatrix FullQkCircuit(HookedTransformer model) =>
        Sandwich(model, model.QK, () => model.W_E, () => model.W_E.mT);

    /// <summary>W_E · QK[layer, head] · W_Eᵀ [d_vocab, d_vocab].</summary>
    public static FactoredMatrix FullQkCircuit(HookedTransformer model, int layer, int head) =>
        Sandwich(model, Head(model, model.QK, layer, head), () => model.W_E, () => model.W_E.mT);

    /// <summary>W_pos · QK · W_posᵀ for every head [n_layers, n_heads, n_ctx, n_ctx] (query position × key
    /// position).</summary>
    public static FactoredMatrix PositionalQkCircuit(HookedTransformer model) =>
        Sandwich(model, model.QK, () => model.W_pos, () => model.W_pos.mT);

    /// <summary>W_pos · QK[layer, head] · W_posᵀ [n_ctx, n_ctx].</summary>
    public static FactoredMatrix PositionalQkCircuit(HookedTransformer model, int layer, int head) =>
        Sandwich(model, Head(model, model.QK, layer, head), () => model.W_pos, () => model.W_pos.mT);

    /// <summary>W_pos · OV · W_U for every head [n_layers, n_heads, n_ctx, d_vocab_out]: what attending to a position
    /// writes to the logits.</summary>
    public static FactoredMatrix PositionalOvCircuit(HookedTransformer model) =>
        Sandwich(model, model.OV, () => model.W_pos, () => model.W_U);

    /// <summary>W_pos · OV[layer, head] · W_U [n_ctx, d_vocab_out].</summary>
    public static FactoredMatrix PositionalOvCircuit(HookedTransformer model, int layer, int head) =>
        Sandwich(model, Head(model, model.OV, layer, head), () => model.W_pos, () => model.W_U);

    /// <summary>left · middle · right, disposing the middle matrix and any new weight tensors.</summary>
    static FactoredMatrix Sandwich(HookedTransformer model, FactoredMatrix middle, Func<Tensor> left,
        Func<Tensor> right)
    {
        using (middle)
        {
            using var scope = NewDisposeScope();
            using var withLeft = middle.MultiplyLeft(left());
            return withLeft.Multiply(right());
        }
    }

    static FactoredMatrix Head(HookedTransformer model, FactoredMatrix all, int layer, int head)
    {
        using (all)
        {
            Check(model, layer, head);
            return all[layer, head];
        }
    }

    internal static void Check(HookedTransformer model, int layer, int head)
    {
        if (layer < 0 || layer >= model.Config.NLayers)
            throw new ArgumentOutOfRangeException(nameof(layer),
                $"layer {layer} is out of range: the model has {model.Config.NLayers} layers");
        if (head < 0 || head >= model.Config.NHeads)
            throw new ArgumentOutOfRangeException(nameof(head),
                $"head {head} is out of range: the model has {model.Config.NHeads} heads per layer");
    }
}
