using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Every attention head's OV and QK circuits as factored matrices [n_layers, n_heads, d_model, d_model]
/// (TransformerLens's <c>model.OV</c> and <c>model.QK</c>); index a head with <c>model.OV[layer, head]</c>.
/// Each call builds a new <see cref="FactoredMatrix"/>: dispose it.
/// </summary>
public sealed partial class HookedTransformer
{
    /// <summary>OV = W_V · W_O per head (A [.., d_model, d_head], B [.., d_head, d_model]).</summary>
    public FactoredMatrix OV
    {
        get
        {
            using var scope = NewDisposeScope();
            return new FactoredMatrix(W_V, W_O);
        }
    }

    /// <summary>QK = W_Q · W_Kᵀ per head (query side on the left, key side on the right).</summary>
    public FactoredMatrix QK
    {
        get
        {
            using var scope = NewDisposeScope();
            return new FactoredMatrix(W_Q, W_K.mT);
        }
    }
}
