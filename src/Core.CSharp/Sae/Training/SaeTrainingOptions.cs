namespace Lens.Sae.Training;

/// <summary>
/// How <see cref="SaeTrainer"/> trains an SAE, under SAELens 6.18's config names and defaults
/// (config.py LanguageModelSAERunnerConfig 234-266 and the architectures' training configs:
/// standard_sae.py StandardTrainingSAEConfig, topk_sae.py TopKTrainingSAEConfig, batchtopk_sae.py
/// BatchTopKTrainingSAEConfig, sae.py TrainingSAEConfig). Values Lens's trainer cannot run as SAELens
/// does are refused by <see cref="Validate"/>, naming the field.
/// </summary>
public sealed record SaeTrainingOptions
{
    /// <summary><c>standard</c> (ReLU with the L1 penalty), <c>topk</c> or <c>batchtopk</c> (saved as
    /// <c>jumprelu</c>).</summary>
    public string Architecture { get; init; } = "standard";
    /// <summary>Number of latents.</summary>
    public required int DSae { get; init; }
    /// <summary>topk: latents per token (an integer); batchtopk: the average per token over the batch.</summary>
    public double K { get; init; } = 100;
    /// <summary>standard: the final coefficient of the sparsity penalty.</summary>
    public double L1Coefficient { get; init; } = 1.0;
    /// <summary>standard: p of the penalty's p-norm over decoder-norm-weighted activations.</summary>
    public double LpNorm { get; init; } = 1.0;
    /// <summary>standard: steps over which the L1 coefficient rises linearly from 0 (CoefficientScheduler).</summary>
    public int L1WarmUpSteps { get; init; }
    public bool ApplyBDecToInput { get; init; } = true;
    /// <summary>Decoder rows start at this norm and W_enc = W_decᵀ (Anthropic's April 2024 initialisation); null keeps
    /// kaiming-uniform rows.</summary>
    public double? DecoderInitNorm { get; init; } = 0.1;
    /// <summary>topk / batchtopk: weight of the AuxK loss on dead latents.</summary>
    public double AuxLossCoefficient { get; init; } = 1.0;
    /// <summary>topk / batchtopk: rank pre-activations scaled by the decoder rows' norms (SAELens's training default:
    /// true).</summary>
    public bool RescaleActsByDecoderNorm { get; init; } = true;
    /// <summary>batchtopk: rate of the threshold's moving average of the smallest positive activation.</summary>
    public double TopkThresholdLr { get; init; } = 0.01;
    /// <summary>Activations (tokens) to train on; a multiple of <see cref="TrainBatchSizeTokens"/>.</summary>
    public long TrainingTokens { get; init; } = 2_000_000;
    public int TrainBatchSizeTokens { get; init; } = 4096;
    public double Lr { get; init; } = 3e-4;
    /// <summary><c>constant</c> or <c>cosineannealing</c>.</summary>
    public string LrSchedulerName { get; init; } = "constant";
    public int LrWarmUpSteps { get; init; }
    /// <summary>Where cosine annealing ends and the linear decay starts (default lr / 10, as SAELens's __post_init__
    /// sets it).</summary>
    public double? LrEnd { get; init; }
    /// <summary>The last steps, over which the learning rate falls linearly to 0.</summary>
    public int LrDecaySteps { get; init; }
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    /// <summary>A latent that has not fired for more than this many steps is dead (feeds the TopK AuxK loss and the
    /// counts).</summary>
    public int DeadFeatureWindow { get; init; } = 1000;
    /// <summary>The firing-frequency statistics (sparsity.safetensors) restart every this many steps.</summary>
    public int FeatureSamplingWindow { get; init; } = 2000;
    /// <summary>Intermediate checkpoints, evenly spaced over the run, each in CheckpointPath/&lt;samples
    /// seen&gt;.</summary>
    public int NCheckpoints { get; init; }
    public string? CheckpointPath { get; init; }
    /// <summary>Seeds the initial weights (and the activation source's shuffling, when it takes the same
    /// seed).</summary>
    public long Seed { get; init; } = 42;
    /// <summary>A progress line on stderr.</summary>
    public bool Progress { get; init; } = true;

    public int? EffectiveK => Architecture == "topk" ? (int)K : null;
    public double LrEndValue => LrEnd ?? Lr / 10;
    public int TotalSteps => (int)(TrainingTokens / TrainBatchSizeTokens);

    public static readonly IReadOnlyList<string> Architectures = ["standard", "topk", "batchtopk"];
    public static readonly IReadOnlyList<string> Schedulers = ["constant", "cosineannealing"];

    /// <summary>Refuses what SAELens would refuse and what Lens's trainer does not run as SAELens does; names the
    /// field.</summary>
    public void Validate(int dIn)
    {
        void Fail(string m) => throw new SaeException($"SAE training: {m}");
        if (!Architectures.Contains(Architecture))
            Fail($"architecture '{Architecture}' cannot be trained (Lens trains {string.Join(", ", Architectures)})");
        if (DSae <= 0) Fail($"d_sae must be positive (got {DSae})");
        if (dIn <= 0) Fail($"d_in must be positive (got {dIn})");
        if (Architecture == "topk" && (K != Math.Floor(K) || K < 1 || K > DSae))
            Fail($"k {K} must be an integer between 1 and d_sae {DSae} for topk");
        if (Architecture == "batchtopk" && !(K > 0 && K <= DSae))
            Fail($"k {K} must be in (0, d_sae {DSae}] for batchtopk");
        if (!(L1Coefficient >= 0)) Fail($"l1_coefficient must be >= 0 (got {L1Coefficient})");
        if (!(LpNorm > 0)) Fail($"lp_norm must be positive (got {LpNorm})");
        if (L1WarmUpSteps < 0) Fail($"l1_warm_up_steps must be >= 0 (got {L1WarmUpSteps})");
        if (DecoderInitNorm is double n && !(n > 0)) Fail($"decoder_init_norm must be positive or null (got {n})");
        if (!(AuxLossCoefficient >= 0)) Fail($"aux_loss_coefficient must be >= 0 (got {AuxLossCoefficient})");
        if (!(TopkThresholdLr > 0 && TopkThresholdLr <= 1))
            Fail($"topk_threshold_lr must be in (0, 1] (got {TopkThresholdLr})");
        if (TrainBatchSizeTokens <= 0) Fail($"train_batch_size_tokens must be positive (got {TrainBatchSizeTokens})");
        if (TrainingTokens <= 0) Fail($"training_tokens must be positive (got {TrainingTokens})");
        if (TrainingTokens % TrainBatchSizeTokens != 0)
            Fail($"training_tokens {TrainingTokens} is not a multiple of " +
                $"train_batch_size_tokens {TrainBatchSizeTokens} (SAELens then runs more steps than its " +
                $"learning-rate schedule spans; Lens refuses rather than guess the tail)");
        if (TotalSteps > int.MaxValue / 2)
            Fail($"training_tokens / train_batch_size_tokens = {TotalSteps} steps is too many");
        if (!(Lr > 0)) Fail($"lr must be positive (got {Lr})");
        if (!Schedulers.Contains(LrSchedulerName))
            Fail($"lr_scheduler_name '{LrSchedulerName}' is not supported (Lens: {string.Join(", ", Schedulers)})");
        if (LrWarmUpSteps < 0) Fail($"lr_warm_up_steps must be >= 0 (got {LrWarmUpSteps})");
        if (LrDecaySteps < 0) Fail($"lr_decay_steps must be >= 0 (got {LrDecaySteps})");
        if (LrWarmUpSteps + LrDecaySteps > TotalSteps)
            Fail($"lr_warm_up_steps {LrWarmUpSteps} + lr_decay_steps {LrDecaySteps} exceed the run's {TotalSteps} " +
                $"steps");
        if (LrSchedulerName == "cosineannealing" && LrWarmUpSteps + LrDecaySteps >= TotalSteps)
            Fail($"cosineannealing needs steps left between the warm-up ({LrWarmUpSteps}) and the decay " +
                $"({LrDecaySteps}) of the run's {TotalSteps} steps");
        if (LrEnd is double e && !(e >= 0)) Fail($"lr_end must be >= 0 (got {e})");
        if (LrDecaySteps > 0 && LrSchedulerName != "constant" && LrEndValue == 0)
            Fail("lr_decay_steps with lr_end 0 would decay from 0 to 0 (SAELens refuses it too)");
        if (!(AdamBeta1 >= 0 && AdamBeta1 < 1)) Fail($"adam_beta1 must be in [0, 1) (got {AdamBeta1})");
        if (!(AdamBeta2 >= 0 && AdamBeta2 < 1)) Fail($"adam_beta2 must be in [0, 1) (got {AdamBeta2})");
        if (DeadFeatureWindow <= 0) Fail($"dead_feature_window must be positive (got {DeadFeatureWindow})");
        if (FeatureSamplingWindow <= 0) Fail($"feature_sampling_window must be positive (got {FeatureSamplingWindow})");
        if (NCheckpoints < 0) Fail($"n_checkpoints must be >= 0 (got {NCheckpoints})");
        if (NCheckpoints > 0 && string.IsNullOrEmpty(CheckpointPath)) Fail("n_checkpoints > 0 needs checkpoint_path");
    }
}
