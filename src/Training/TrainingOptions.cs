using static TorchSharp.torch;

namespace Lens.Training;

/// <summary>How <see cref="Trainer.Train(HookedTransformer, IBatchSource, TrainingOptions)"/> trains: AdamW with linear
/// warm-up and gradient clipping.</summary>
public sealed record TrainingOptions
{
    public int Steps { get; init; } = 1000;
    public int BatchSize { get; init; } = 8;
    /// <summary>Peak learning rate, reached after <see cref="WarmupSteps"/> and held constant after.</summary>
    public double Lr { get; init; } = 1e-3;
    /// <summary>AdamW's decoupled weight decay, applied to weight matrices only (not to biases, norms or 1-D
    /// tensors).</summary>
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Steps over which the learning rate rises linearly from lr/warmup to lr.</summary>
    public int WarmupSteps { get; init; }
    /// <summary>After the warm-up: hold <see cref="Lr"/> (TransformerLens's train), or decay it along a cosine to
    /// <see cref="MinLr"/> at the last step (nanoGPT's schedule).</summary>
    public LrSchedule Schedule { get; init; } = LrSchedule.Constant;
    /// <summary>The learning rate a <see cref="LrSchedule.Cosine"/> schedule ends at.</summary>
    public double MinLr { get; init; }
    /// <summary>Largest global gradient norm (clip_grad_norm_); 0 turns clipping off.</summary>
    public double GradClip { get; init; } = 1.0;
    /// <summary>Seeds the generator that draws the batches.</summary>
    public long Seed { get; init; }
    /// <summary>Save the model every this many steps (0: never) into <see cref="CheckpointDir"/>/step-NNNNNN.</summary>
    public int CheckpointEvery { get; init; }
    public string? CheckpointDir { get; init; }
    /// <summary>Show a progress line on stderr (step, loss, it/s).</summary>
    public bool Progress { get; init; } = true;
    /// <summary>The loss of a batch of tokens; default: the model's mean next-token cross-entropy.</summary>
    public Func<HookedTransformer, Tensor, Tensor>? Loss { get; init; }
    /// <summary>Called every <see cref="EvalEvery"/> steps (without gradients); returning true ends training
    /// early.</summary>
    public Func<HookedTransformer, int, bool>? StopWhen { get; init; }
    public int EvalEvery { get; init; } = 100;

    internal void Validate()
    {
        if (Steps < 0) throw new ArgumentException($"steps must be >= 0 (got {Steps})");
        if (BatchSize <= 0) throw new ArgumentException($"batch size must be positive (got {BatchSize})");
        if (!(Lr > 0)) throw new ArgumentException($"learning rate must be positive (got {Lr})");
        if (WeightDecay < 0) throw new ArgumentException($"weight decay must be >= 0 (got {WeightDecay})");
        if (MinLr < 0 || MinLr > Lr)
            throw new ArgumentException($"the minimum learning rate must be in [0, lr] (got {MinLr})");
        if (WarmupSteps < 0) throw new ArgumentException($"warm-up steps must be >= 0 (got {WarmupSteps})");
        if (GradClip < 0) throw new ArgumentException($"gradient clip must be >= 0 (got {GradClip})");
        if (CheckpointEvery < 0)
            throw new ArgumentException($"checkpoint interval must be >= 0 (got {CheckpointEvery})");
        if (CheckpointEvery > 0 && string.IsNullOrEmpty(CheckpointDir))
            throw new ArgumentException("checkpointing needs a checkpoint folder");
        if (StopWhen is not null && EvalEvery <= 0)
            throw new ArgumentException($"eval interval must be positive (got {EvalEvery})");
    }
}

/// <summary>How the learning rate moves after the warm-up.</summary>
public enum LrSchedule { Constant, Cosine }

/// <summary>What a training run did: steps taken, the loss of every step, whether it stopped early, and how long it
/// took.</summary>
public sealed record TrainingResult(int Steps, IReadOnlyList<float> Losses, bool StoppedEarly, TimeSpan Elapsed,
    IReadOnlyList<string> Checkpoints)
{
    public float FinalLoss => Losses.Count > 0 ? Losses[^1] : float.NaN;
}
