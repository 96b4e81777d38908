using System.Text.RegularExpressions;
using Lens.Pretrained;

namespace Lens.Hub;

/// <summary>
/// The model sources that download through the hub client into the huggingface_hub cache
/// (<see cref="PretrainedDownloads"/>), then load the snapshot folder as a hub-layout checkpoint with
/// TransformerLens's default weight processing.
/// </summary>
public static partial class HubModelSources
{
    /// <summary>A name or alias of TransformerLens's official models table (<c>lens models</c>).</summary>
    public static ModelSource KnownName { get; } = new("known model name or alias (lens models)",
        (name, o) => OfficialModels.TryGet(name) is { } m ? FromHub(m.RepoId, m.Name, o) : null);

    /// <summary>A hub repository id <c>owner/name</c> that is no local path.</summary>
    public static ModelSource HubId { get; } = new("hub id (owner/name, downloaded to the hub cache)",
        (name, o) => IsHubId(name) ? FromHub(name, name, o) : null);

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
    private static partial Regex HubIdPattern();

    /// <summary>owner/name that is not a local path.</summary>
    static bool IsHubId(string name) => HubIdPattern().IsMatch(name) && !Directory.Exists(name) && !File.Exists(name)
        && !name.Contains("--") && !name.Contains("..");

    static HookedTransformer FromHub(string repoId, string officialName, LoadOptions options) =>
        HubLayoutLoader.Load(PretrainedDownloads.Fetch(repoId), options, officialName);
}
