using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>The token inputs a training run streams a model's activations over, and how SAELens's metadata names
/// them.</summary>
public abstract record SaeTrainingInputs
{
    /// <summary>BOS + n random ids from the model's random-token range, the block repeated
    /// (<see cref="SaeInputs.RepeatedRandom"/>).</summary>
    public static SaeTrainingInputs Repeated(int n, int repeats = 2) => new RepeatedInputs(n, repeats);
    /// <summary>A UTF-8 text file, one document per line, packed into rows of <paramref name="contextSize"/>
    /// (<see cref="SaeInputs.Texts"/>).</summary>
    public static SaeTrainingInputs TextFile(string path, int contextSize) => new TextFileInputs(path, contextSize);

    public abstract IBatchSource Tokens(HookedTransformer model);
    /// <summary>metadata.dataset_path.</summary>
    public abstract string Description { get; }
    /// <summary>metadata.context_size: the rows' length.</summary>
    public abstract int ContextSize(HookedTransformer model);

    sealed record RepeatedInputs(int N, int Repeats) : SaeTrainingInputs
    {
        public override IBatchSource Tokens(HookedTransformer model) => SaeInputs.RepeatedRandom(model, N, Repeats);
        public override string Description => $"lens: repeated random tokens (BOS + {N} random ids from the model's " +
            $"random-token range, {Repeats} copies)";
        public override int ContextSize(HookedTransformer model) =>
            (model.Config.DefaultPrependBos && model.Tokenizer?.BosTokenId is not null ? 1 : 0) + N * Repeats;
    }

    sealed record TextFileInputs(string Path, int Context) : SaeTrainingInputs
    {
        public override IBatchSource Tokens(HookedTransformer model)
        {
            if (!File.Exists(Path)) throw new SaeException($"training inputs: no such file '{Path}'");
            return SaeInputs.Texts(model, File.ReadLines(Path), Context, Path);
        }
        public override string Description => Path;
        public override int ContextSize(HookedTransformer model) => Context;
    }
}

/// <summary>Everything a training run on a model needs besides the model: where, how, on what, which tokens to leave
/// out.</summary>
/// <param name="BufferSize">rows of the mixing buffer (0: eight batches)</param>
/// <param name="SequencesPerForward">rows of tokens per model forward while gathering activations</param>
public sealed record SaeTrainingRequest(string Hook, SaeTrainingOptions Options, SaeTrainingInputs Inputs,
    IReadOnlyList<long> ExcludeTokens, int BufferSize = 0, int SequencesPerForward = 64)
{
    public SaeMetadata Metadata(HookedTransformer model) => new()
    {
        HookName = Hook, ModelName = model.Config.ModelName, ContextSize = Inputs.ContextSize(model),
        PrependBos = model.Config.DefaultPrependBos, DatasetPath = Inputs.Description,
        ExcludeSpecialTokens = ExcludeTokens, TrainedWith = "Lens (SAELens 6.18.0's trainer)",
    };
}

/// <summary>Trains an SAE on a model's activations: <see cref="ModelActivations"/> through a <see cref="MixingBuffer"/>
/// into <see cref="SaeTrainer"/>.</summary>
public static class SaeTraining
{
    public static SaeTrainingResult Run(HookedTransformer model, SaeTrainingRequest request,
        Action<SaeTrainingStep>? onStep = null)
    {
        var o = request.Options;
        if (request.BufferSize < 0)
            throw new SaeException($"the activation buffer size must be >= 0 (got {request.BufferSize})");
        using var tokenGenerator = new Generator((ulong)o.Seed);
        var activations = new ModelActivations(model, request.Hook, request.Inputs.Tokens(model),
            request.SequencesPerForward, tokenGenerator, request.ExcludeTokens);
        o.Validate(activations.DIn);
        int buffer = request.BufferSize > 0 ? request.BufferSize : checked(8 * o.TrainBatchSizeTokens);
        using var source = activations.Buffered(buffer, o.Seed + 1);
        return SaeTrainer.Train(source, o, request.Metadata(model), onStep);
    }

    /// <summary>
    /// Trains an SAE on one hook column of an activation dataset on disk (<c>lens harvest</c>, or its shard folders),
    /// shuffled through the reader's seeded buffer; refused when the run needs more activations than the dataset holds.
    /// </summary>
    public static SaeTrainingResult Run(Lens.Datasets.ActivationDataset dataset, string hook,
        SaeTrainingOptions options, SaeMetadata metadata, Action<SaeTrainingStep>? onStep = null)
    {
        using var source =
            new DatasetActivations(dataset, hook, options.TrainBatchSizeTokens, unchecked((int)options.Seed));
        options.Validate(source.DIn);
        source.Check(options);
        return SaeTrainer.Train(source, options, metadata with { HookName = hook, DatasetPath = dataset.Path }, onStep);
    }
}
