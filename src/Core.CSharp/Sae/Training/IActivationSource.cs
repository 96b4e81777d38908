using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>
/// Where an SAE's training activations come from: an endless stream of batches [n, d_in] (float32,
/// caller owns each). <see cref="MixingBuffer"/> over <see cref="ModelActivations"/> streams them from a
/// model's hook point; an activation dataset on disk plugs in as another implementation.
/// </summary>
public interface IActivationSource
{
    /// <summary>The width of every batch.</summary>
    int DIn { get; }
    /// <summary>The next <paramref name="n"/> activations [n, d_in].</summary>
    Tensor NextBatch(int n);
}
