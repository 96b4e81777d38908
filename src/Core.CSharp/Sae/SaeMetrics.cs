namespace Lens.Sae;

/// <summary>
/// SAELens's <c>run_evals</c> metrics (evals.py) for a set of input batches, plus the textbook/trainer
/// variants the names say, and feature density. Each value is named as SAELens names it.
/// </summary>
public sealed record SaeMetrics
{
    /// <summary>Mean over tokens of the number of latents above 0 (evals.py 526).</summary>
    public required double L0 { get; init; }
    /// <summary>Mean over tokens of the latents' sum (evals.py 527).</summary>
    public required double L1 { get; init; }
    /// <summary>SAELens's "mse": Σ_d (x−x̂)² divided by the batch's token count, then the mean over tokens (evals.py
    /// 531-536); depends on the batch size.</summary>
    public required double Mse { get; init; }
    /// <summary>SAELens's run_evals "explained_variance", uncentred as written: 1 − mean_t Σ(x−x̂)² / (mean_t Σ x² −
    /// (mean_{t,d} x²)²) (evals.py 548-556, 583-588).</summary>
    public required double ExplainedVariance { get; init; }
    /// <summary>"explained_variance_legacy": mean_t [1 − Σ(x−x̂)² / Σ(x − mean_t x)²] (evals.py 537-544).</summary>
    public required double ExplainedVarianceLegacy { get; init; }
    /// <summary>The centred textbook value (= the trainer's, sae_trainer.py 353-360): 1 − Σ_t‖x−x̂‖² / Σ_t‖x −
    /// x̄‖².</summary>
    public required double ExplainedVarianceCentred { get; init; }
    /// <summary>The training MSE loss: mean over tokens of Σ_d (x−x̂)² (sae.py 925-927).</summary>
    public required double MseLoss { get; init; }
    public required double Cossim { get; init; }
    public required double L2NormIn { get; init; }
    public required double L2NormOut { get; init; }
    public required double L2Ratio { get; init; }
    public required double RelativeReconstructionBias { get; init; }
    public required double CeLossWithoutSae { get; init; }
    public required double CeLossWithSae { get; init; }
    public required double CeLossWithAblation { get; init; }
    /// <summary>(CE_abl − CE_sae) / (CE_abl − CE_clean) (evals.py 376-379).</summary>
    public required double CeLossScore { get; init; }
    public required double KlDivWithSae { get; init; }
    public required double KlDivWithAblation { get; init; }
    /// <summary>(KL_abl − KL_sae) / KL_abl (evals.py 371-374).</summary>
    public required double KlDivScore { get; init; }
    /// <summary>Fraction of (token, latent) pairs above 0: L0 / d_sae.</summary>
    public required double FiringFraction { get; init; }
    /// <summary>Per latent, the fraction of tokens on which it fires (SAELens's feature_density).</summary>
    public required double[] FeatureDensity { get; init; }
    /// <summary>The density above which a latent counts as dense.</summary>
    public required double DenseThreshold { get; init; }
    public required int Tokens { get; init; }

    /// <summary>Latents that never fired on these inputs.</summary>
    public int DeadFeatures => FeatureDensity.Count(d => d == 0);
    /// <summary>Latents firing on more than <see cref="DenseThreshold"/> of tokens.</summary>
    public int DenseFeatures => FeatureDensity.Count(d => d > DenseThreshold);

    /// <summary>Name → value, SAELens's names for its metrics (the labelled extras after them).</summary>
    public IReadOnlyList<(string Name, double Value)> Named() =>
    [
        ("l0", L0), ("l1", L1), ("mse", Mse), ("explained_variance", ExplainedVariance),
        ("explained_variance_legacy", ExplainedVarianceLegacy), ("cossim", Cossim), ("l2_norm_in", L2NormIn),
        ("l2_norm_out", L2NormOut), ("l2_ratio", L2Ratio), ("relative_reconstruction_bias", RelativeReconstructionBias),
        ("ce_loss_without_sae", CeLossWithoutSae), ("ce_loss_with_sae", CeLossWithSae),
            ("ce_loss_with_ablation", CeLossWithAblation),
        ("ce_loss_score", CeLossScore), ("kl_div_with_sae", KlDivWithSae), ("kl_div_with_ablation", KlDivWithAblation),
        ("kl_div_score", KlDivScore), ("explained_variance_centred", ExplainedVarianceCentred), ("mse_loss", MseLoss),
        ("firing_fraction", FiringFraction), ("dead_features", DeadFeatures), ("dense_features", DenseFeatures),
            ("tokens", Tokens),
    ];
}
