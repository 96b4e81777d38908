using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;

namespace Lens.Pretrained;

/// <summary>
/// Registers the pretrained sources with <see cref="ModelLoader"/>, so the API
/// (<see cref="HookedTransformer.FromPretrained"/>), <c>lens</c> and the experiment language resolve
/// names the same way. Tried in this order: a llama2.c .bin file, a hub-layout folder, a known
/// name or alias, a hub id <c>owner/name</c> (downloaded through the hub client); the
/// TransformerLens-native folder is ModelLoader's own.
/// </summary>
public static partial class PretrainedSources
{
#pragma warning disable CA2255 // registration must happen before the first ModelLoader.Load, whoever calls it
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register()
    {
        // ModelLoader.Register puts each new source first: register from last to first.
        ModelLoader.Register("hub id (owner/name, downloaded to the hub cache)", (name, o) => IsHubId(name) ? FromHub(name, name, o) : null);
        ModelLoader.Register("known model name or alias (lens models)", (name, o) => OfficialModels.TryGet(name) is { } m ? FromHub(m.RepoId, m.Name, o) : null);
        ModelLoader.Register("hub-layout checkpoint folder (config.json + model.safetensors)", (name, o) => HubLayoutLoader.IsHubLayoutFolder(name) ? HubLayoutLoader.Load(name, o) : null);
        ModelLoader.Register("llama2.c checkpoint (.bin)", (name, o) =>
            name.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) && File.Exists(name) ? Llama2cLoader.Load(name, null, o) : null);
    }

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
    private static partial Regex HubIdPattern();

    /// <summary>owner/name that is not a local path.</summary>
    static bool IsHubId(string name) => HubIdPattern().IsMatch(name) && !Directory.Exists(name) && !File.Exists(name) && !name.Contains("--") && !name.Contains("..");

    static HookedTransformer FromHub(string repoId, string officialName, LoadOptions options) =>
        HubLayoutLoader.Load(PretrainedDownloads.Fetch(repoId), options, officialName);
}
