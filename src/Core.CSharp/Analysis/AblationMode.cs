using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// What replaces the ablated activation. <see cref="Zero"/>: zeros. <see cref="Mean"/>: its mean over
/// the batch and positions of a reference run on <c>ReferenceTokens</c> (the same value at every
/// example and position). <see cref="Resample"/>: the activation of another input: for each example
/// of the ablated run, a row of <c>SourceTokens</c> drawn uniformly (with replacement) by
/// <see cref="SplitMix64"/>(<c>Seed</c>), position by position (the source must have as many positions).
/// </summary>
public abstract record AblationMode
{
    private AblationMode() { }

    public sealed record Zero : AblationMode;
    public sealed record Mean(Tensor ReferenceTokens) : AblationMode;
    public sealed record Resample(Tensor SourceTokens, ulong Seed) : AblationMode;
}
