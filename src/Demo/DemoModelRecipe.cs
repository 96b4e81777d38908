namespace Lens.Demo;

/// <summary>
/// How <c>demo-attn-only-2l</c> is made: the architecture, the curriculum (BOS + m random ids + n random ids
/// + the same n ids again) and the optimiser settings. The defaults are the recipe of the committed checkpoint;
/// <see cref="DemoModelTraining.Train"/> reproduces it from them.
/// </summary>
public sealed record DemoModelRecipe
{
    public int NHeads { get; init; } = 4;
    public int DHead { get; init; } = 16;
    public int DModel { get; init; } = 64;
    public int NCtx { get; init; } = 128;
    public string PositionalEmbeddingType { get; init; } = "rotary";

    /// <summary>The curriculum's token ids, [low, high) of GPT-2's vocabulary (recorded as
    /// <c>lens_random_token_range</c>).</summary>
    public long TokenLow { get; init; } = 1000;
    public long TokenHigh { get; init; } = 2000;
    /// <summary>The repeated block's length is drawn per batch, uniformly from [MinLength, MaxLength); a random prefix
    /// fills 0 to all of the rest of n_ctx.</summary>
    public int MinLength { get; init; } = 5;
    public int MaxLength { get; init; } = 64;

    public int Steps { get; init; } = 6000;
    public int BatchSize { get; init; } = 32;
    public double Lr { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Seeds the initial weights (torch.manual_seed) and, through the trainer, the batches.</summary>
    public long Seed { get; init; }

    public const long Bos = 50256;
    public const int Gpt2Vocab = 50257;

    internal void Validate()
    {
        if (TokenLow < 0 || TokenHigh <= TokenLow || TokenHigh > Bos)
            throw new ArgumentException($"the curriculum's ids [{TokenLow}, {TokenHigh}) must lie in [0, {Bos})");
        if (MinLength < 1 || MaxLength <= MinLength)
            throw new ArgumentException(
                $"block lengths [{MinLength}, {MaxLength}) must be a non-empty range of positive lengths");
        if (NCtx - 1 - MinLength > TokenHigh - TokenLow)
            throw new ArgumentException($"a row of distinct ids needs up to {NCtx - 1 - MinLength} of them, more " +
                $"than the {TokenHigh - TokenLow} in the range");
        if (2 * (MaxLength - 1) + 1 > NCtx)
            throw new ArgumentException($"BOS + two blocks of up to {MaxLength - 1} tokens do not fit n_ctx {NCtx}");
    }
}
