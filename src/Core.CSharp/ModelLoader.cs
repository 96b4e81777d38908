namespace Lens;

/// <summary>
/// The one place a model name is resolved, used by the API, <c>lens</c> and the experiment language:
/// a TransformerLens-native checkpoint folder (config.json + model.safetensors); further sources
/// (known names and aliases, hub ids, hub-layout folders, llama2.c .bin files) register here.
/// </summary>
public static class ModelLoader
{
    /// <summary>A source of models: returns null when the name is not its kind.</summary>
    public delegate HookedTransformer? Resolver(string name, LoadOptions options);

    static readonly List<(string Kind, Resolver Resolve)> Resolvers =
    [
        ("TransformerLens-native checkpoint folder", (name, o) => HookedTransformer.IsNativeCheckpoint(name) ? HookedTransformer.Load(name, o.Device, o.Dtype) : null),
    ];

    public static void Register(string kind, Resolver resolver) { lock (Resolvers) Resolvers.Insert(0, (kind, resolver)); }

    public static HookedTransformer Load(string name, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        List<(string Kind, Resolver Resolve)> resolvers;
        lock (Resolvers) resolvers = [.. Resolvers];
        foreach (var (_, resolve) in resolvers)
            if (resolve(name, options) is HookedTransformer m) return m;
        if (Directory.Exists(name))
            throw new CheckpointException($"'{name}' is a folder but not a model checkpoint (expected config.json with model.safetensors)");
        throw new CheckpointException($"unknown model '{name}': not a known name, hub id, checkpoint folder or llama2.c .bin (sources tried: {string.Join("; ", resolvers.Select(r => r.Kind))})");
    }
}

/// <summary>How to load a model: device, weight dtype, and (for pretrained models) weight processing.</summary>
public sealed record LoadOptions
{
    public TorchSharp.torch.Device? Device { get; init; }
    public TorchSharp.torch.ScalarType? Dtype { get; init; }
    /// <summary>TransformerLens's from_pretrained defaults: fold_ln, center_writing_weights, center_unembed, fold_value_biases.</summary>
    public bool ProcessWeights { get; init; } = true;
}
