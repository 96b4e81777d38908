using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>One training step as SAELens logs it: losses by name (overall_loss, mse_loss, l1_loss or
/// auxiliary_reconstruction_loss), L0, the trainer's explained variance (centred), dead latents.</summary>
public sealed record SaeTrainingStep(int Step, long Samples, double Lr, double L1Coefficient,
    IReadOnlyList<(string Name, double Value)> Losses,
    double L0, double ExplainedVariance, long DeadFeatures, double? TopkThreshold)
{
    public double OverallLoss => Losses[0].Value;
    public double Loss(string name) => Losses.First(l => l.Name == name).Value;
}

/// <summary>A finished run: the inference SAE (caller disposes), every step's record, log10 firing frequencies of the
/// last sampling window, dead latents at the end, the checkpoints written.</summary>
public sealed record SaeTrainingResult(SparseAutoencoder Sae, IReadOnlyList<SaeTrainingStep> Steps,
    Tensor LogFeatureSparsity, long DeadFeatures,
    TimeSpan Elapsed, IReadOnlyList<string> Checkpoints, long Samples) : IDisposable
{
    public void Dispose() { Sae.Dispose(); LogFeatureSparsity.Dispose(); }
}
