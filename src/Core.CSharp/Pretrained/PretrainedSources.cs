namespace Lens.Pretrained;

/// <summary>
/// The model sources Lens.Core knows by itself, those on this machine's disk. The full ordered list, with the
/// embedded demo model (Lens.Demo) and the names downloaded through the hub (Lens.Hub), is
/// <c>Lens.Models.ModelSources.All</c>.
/// </summary>
public static class PretrainedSources
{
    /// <summary>A folder as <see cref="HookedTransformer.Save"/> writes it: loaded as saved, no weight
    /// processing.</summary>
    public static ModelSource TransformerLensFolder { get; } = new("TransformerLens-native checkpoint folder",
        (name, o) =>
            HookedTransformer.IsNativeCheckpoint(name) ? HookedTransformer.Load(name, o.Device, o.Dtype) : null);

    /// <summary>A Hugging Face checkpoint folder (config.json + safetensors or pickled weights), converted.</summary>
    public static ModelSource HubLayoutFolder { get; } =
        new("hub-layout checkpoint folder (config.json + model.safetensors)",
        (name, o) => HubLayoutLoader.IsHubLayoutFolder(name) ? HubLayoutLoader.Load(name, o) : null);

    /// <summary>A llama2.c checkpoint file.</summary>
    public static ModelSource Llama2cFile { get; } = new("llama2.c checkpoint (.bin)",
        (name, o) => name.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) && File.Exists(name)
            ? Llama2cLoader.Load(name, null, o)
            : null);

    /// <summary>The local sources, in the order <c>Lens.Models.ModelSources.All</c> tries them.</summary>
    public static IReadOnlyList<ModelSource> Local { get; } = [TransformerLensFolder, HubLayoutFolder, Llama2cFile];
}
