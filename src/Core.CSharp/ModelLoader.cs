using Lens.Pretrained;

namespace Lens;

/// <summary>
/// The one place a model name is resolved, used by the API (<see cref="HookedTransformer.FromPretrained"/>),
/// <c>lens</c> and the experiment language: the name is tried against <see cref="Sources"/> in order.
/// </summary>
public static class ModelLoader
{
    /// <summary>
    /// The sources a name is tried against, in order. Lens.Core alone knows the local ones
    /// (<see cref="PretrainedSources.Local"/>); a host (the <c>lens</c> tool, the tests, Lens.FSharp, Lens.fsx)
    /// installs the full list, <c>Lens.Models.ModelSources.All</c> (the embedded demo model, local folders and
    /// files, known names, hub ids), with <c>Lens.Models.ModelSources.Use()</c> at start-up.
    /// </summary>
    public static IReadOnlyList<ModelSource> Sources { get; set; } = PretrainedSources.Local;

    /// <summary>Loads <paramref name="name"/> from the first of <paramref name="sources"/> (default:
    /// <see cref="Sources"/>) that knows it.</summary>
    public static HookedTransformer Load(string name, LoadOptions? options = null,
        IReadOnlyList<ModelSource>? sources = null)
    {
        options ??= new LoadOptions();
        sources ??= Sources;
        foreach (var source in sources)
            if (source.Resolve(name, options) is HookedTransformer m) return m;
        if (Directory.Exists(name))
            throw new CheckpointException(
                $"'{name}' is a folder but not a model checkpoint (expected config.json with model.safetensors)");
        var onlyLocal = ReferenceEquals(sources, PretrainedSources.Local)
            ? "; the embedded demo model, known names and hub ids are tried only once the host calls " +
                "Lens.Models.ModelSources.Use() (the lens tool, Lens.FSharp and Lens.fsx do)"
            : "";
        throw new CheckpointException($"unknown model '{name}': not a known name, hub id, checkpoint folder or " +
            $"llama2.c .bin (sources tried: {string.Join("; ", sources.Select(s => s.Kind))}){onlyLocal}");
    }
}

/// <summary>How to load a model: device, weight dtype, and (for pretrained models) weight processing.</summary>
public sealed record LoadOptions
{
    public TorchSharp.torch.Device? Device { get; init; }
    public TorchSharp.torch.ScalarType? Dtype { get; init; }
    /// <summary>TransformerLens's from_pretrained defaults: fold_ln, center_writing_weights, center_unembed,
    /// fold_value_biases.</summary>
    public bool ProcessWeights { get; init; } = true;
}
