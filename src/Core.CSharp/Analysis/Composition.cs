using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// How attention heads compose, and whether they copy (Elhage et al., "A Mathematical Framework for
/// Transformer Circuits", 2021; TransformerLens's <c>all_composition_scores</c> and its demos).
/// </summary>
public static class Composition
{
    /// <summary>
    /// TransformerLens's <c>model.all_composition_scores(mode)</c> [L1, H1, L2, H2]: with
    /// left = OV of head (L1, H1) and right = QK (mode "Q"), QKᵀ ("K") or OV ("V") of head (L2, H2),
    /// score = ‖left·right‖_F / (‖left‖_F·‖right‖_F), computed from the collapsed factors
    /// (left as S·Vhᵀ, right as U·S: the orthogonal factors change no Frobenius norm); entries with
    /// L2 ≤ L1 are 0.
    /// </summary>
    public static CompositionScores AllScores(HookedTransformer model, string mode)
    {
        if (mode is not ("Q" or "K" or "V"))
            throw new ArgumentException($"mode must be one of \"Q\", \"K\", \"V\", not \"{mode}\"");
        using var scope = NewDisposeScope();
        using var ov = model.OV;
        using var right = mode switch { "Q" => model.QK, "K" => QkTransposed(model), _ => model.OV };
        var left = ov.CollapseL();                       // [L, H, d_head, d_model]
        var rightCollapsed = right.CollapseR();          // [L, H, d_model, d_head]
        var leftNorms = Frobenius(left);                 // [L, H]
        var rightNorms = Frobenius(rightCollapsed);      // [L, H]
        int layers = model.Config.NLayers;
        // One source layer at a time keeps the products at [H, L, H, d_head, d_head].
        var productNorms = Enumerable.Range(0, layers)
            .Select(l1 => Frobenius(left[l1].unsqueeze(1).unsqueeze(2).matmul(rightCollapsed.unsqueeze(0))))
            .ToArray();
        var scores =
            torch.stack(productNorms, 0) / rightNorms.unsqueeze(0).unsqueeze(1) / leftNorms.unsqueeze(-1).unsqueeze(-1);
        var layerIds = arange(layers, device: scores.device);
        var later = layerIds.view(layers, 1, 1, 1).lt(layerIds.view(1, 1, layers, 1));
        scores = where(later, scores, zeros_like(scores));
        return new CompositionScores(mode, scores.DetachFromDisposeScope());
    }

    static FactoredMatrix QkTransposed(HookedTransformer model)
    {
        using var qk = model.QK;
        return qk.T;
    }

    static Tensor Frobenius(Tensor x) => x.pow(2).sum([-2L, -1L]).sqrt();

    /// <summary>
    /// The copying score of every head's OV circuit [n_layers, n_heads]: Re(Σλ)/Σ|λ| over the
    /// eigenvalues λ of W_V·W_O (computed on the d_head × d_head side W_O·W_V). It is 1 when every
    /// eigenvalue is positive (the head copies what it attends to), −1 when every one is negative.
    /// This is the statistic of the framework paper and of TransformerLens's main demo.
    /// </summary>
    public static Tensor OvCopyingScores(HookedTransformer model)
    {
        using var ov = model.OV;
        return CopyingScore(ov);
    }

    /// <summary>
    /// The same copying score for every head's full OV circuit W_E·W_V·W_O·W_U [n_layers, n_heads]
    /// (token in → logit out; needs d_vocab = d_vocab_out for eigenvalues to mean anything).
    /// </summary>
    public static Tensor FullOvCopyingScores(HookedTransformer model)
    {
        using var scope = NewDisposeScope();
        var eig = FullOvEigenvalues(model);
        return (eig.sum(-1).real / eig.abs().sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The eigenvalues of every head's full OV circuit [n_layers, n_heads, d_head], from its small side
    /// B·A = (W_O·W_U)·(W_E·W_V) = W_O·(W_U·W_E)·W_V: only d_model × d_model and d_head × d_head
    /// matrices are formed, never a d_vocab-sized one.
    /// </summary>
    public static Tensor FullOvEigenvalues(HookedTransformer model)
    {
        if (model.Config.DVocab != model.Config.DVocabOut)
            throw new InvalidOperationException($"the full OV circuit is square only when d_vocab = d_vocab_out " +
                $"({model.Config.DVocab} vs {model.Config.DVocabOut})");
        using var scope = NewDisposeScope();
        var unembedEmbed = model.W_U.matmul(model.W_E);                  // [d_model, d_model]
        var small = model.W_O.matmul(unembedEmbed).matmul(model.W_V);     // [L, H, d_head, d_head]
        if (small.dtype is ScalarType.Float16 or ScalarType.BFloat16) small = small.to(ScalarType.Float32);
        var (values, _) = linalg.eig(small);
        return values.MoveToOuterDisposeScope();
    }

    /// <summary>Re(Σλ)/Σ|λ| over the eigenvalues of a square factored matrix, per leading index.</summary>
    public static Tensor CopyingScore(FactoredMatrix matrix)
    {
        using var scope = NewDisposeScope();
        var eig = matrix.Eigenvalues;
        return (eig.sum(-1).real / eig.abs().sum(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The fraction of the eigenvalues of a square factored matrix (its mdim nonzero-side eigenvalues,
    /// those of B·A) whose real part is positive, per leading index: a count-based reading of "how
    /// positive is the spectrum", next to the magnitude-weighted <see cref="CopyingScore"/>.
    /// </summary>
    public static Tensor PositiveEigenvalueFraction(FactoredMatrix matrix)
    {
        using var scope = NewDisposeScope();
        var eig = matrix.Eigenvalues;
        return eig.real.gt(0).to(ScalarType.Float32).mean([-1L]).MoveToOuterDisposeScope();
    }

    /// <summary><see cref="PositiveEigenvalueFraction"/> of every head's full OV circuit [n_layers, n_heads].</summary>
    public static Tensor FullOvPositiveEigenvalueFraction(HookedTransformer model)
    {
        using var scope = NewDisposeScope();
        return FullOvEigenvalues(model).real.gt(0).to(ScalarType.Float32).mean([-1L]).MoveToOuterDisposeScope();
    }
}
