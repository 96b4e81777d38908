using Lens.Demo;
using Lens.Hub;
using Lens.Pretrained;

namespace Lens.Models;

/// <summary>
/// Every place a model name is looked up, in the order tried: the first source that knows the name loads it.
/// The API (<see cref="HookedTransformer.FromPretrained"/>, F#'s <c>Model.load</c>), <c>lens</c> and the
/// experiment language's <c>model NAME</c> all resolve names through this list once a host has called
/// <see cref="Use"/>.
/// </summary>
public static class ModelSources
{
    public static IReadOnlyList<ModelSource> All { get; } =
    [
        EmbeddedModels.Source,                    // demo-attn-only-2l, inside Lens.Demo
        PretrainedSources.TransformerLensFolder,  // a folder HookedTransformer.Save wrote: loaded as saved
        PretrainedSources.HubLayoutFolder,        // a Hugging Face checkpoint folder, converted and processed
        PretrainedSources.Llama2cFile,            // a llama2.c .bin
        HubModelSources.KnownName,                // a name or alias from `lens models`, downloaded
        HubModelSources.HubId,                    // owner/name, downloaded
    ];

    /// <summary>Makes <see cref="ModelLoader"/> try <see cref="All"/>. Hosts call it once at start-up.</summary>
    public static void Use() => ModelLoader.Sources = All;
}
