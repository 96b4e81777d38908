using Lens.Sae;
using static TorchSharp.torch;

namespace Lens.Hub;

/// <summary>
/// An SAE named by a hub repository id, <c>owner/repo[/folder]</c>: SAELens's layout (the folder's
/// <c>cfg.json</c> + <c>sae_weights.safetensors</c>, as SAELens's hub releases store each SAE) or Gemma
/// Scope's (<c>layer_N/width_W/average_l0_K/params.npz</c>), downloaded through the hub cache; the local
/// snapshot folder is then loaded as any SAE folder (for Gemma Scope the cache path names the repository,
/// from which the hook is read).
/// </summary>
public static class SaeHubSource
{
    /// <summary>True when <paramref name="path"/> is no local file or folder and reads as
    /// <c>owner/repo[/folder]</c>.</summary>
    public static bool IsRepoId(string path) =>
        !File.Exists(path) && !Directory.Exists(path) && !Path.IsPathRooted(path) && !path.Contains('\\')
            && !path.StartsWith('.')
        && !path.StartsWith('~') && path.Split('/') is { Length: >= 2 } parts
        && parts.All(p => p.Length > 0 && p is not "." and not "..");

    /// <summary>
    /// Loads an SAE as <see cref="SaeLoader.Load"/> does, downloading it first when <paramref name="path"/> is a hub id
    /// (no local file or folder, <c>owner/repo[/folder]</c>).
    /// </summary>
    /// <param name="hub">where a hub id is downloaded from (default: the environment's hub settings)</param>
    public static SparseAutoencoder Load(string path, string? hook = null, Device? device = null,
        HubOptions? hub = null) =>
        SaeLoader.Load(IsRepoId(path) ? Download(path, hub) : path, hook, device);

    /// <summary>Downloads the SAE's files (each only when the cache lacks it) and returns its folder in the
    /// snapshot.</summary>
    public static string Download(string id, HubOptions? options = null)
    {
        if (!IsRepoId(id))
            throw new SaeException($"'{id}' is not a hub SAE id: expected owner/repo or owner/repo/folder");
        var parts = id.Split('/');
        var repo = parts[0] + "/" + parts[1];
        var folder = string.Join('/', parts[2..]);
        string InFolder(string file) => folder.Length == 0 ? file : folder + "/" + file;
        using var client = new HubClient(options ?? HubOptions.FromEnvironment());
        try
        {
            var files = client.ListFilesAsync(repo).GetAwaiter().GetResult();
            string[] wanted;
            if (files.Contains(InFolder(SaeLoader.ConfigFile)))
            {
                if (!files.Contains(InFolder(SaeLoader.WeightsFile)))
                    throw new SaeException($"hub repository {repo}: '{InFolder(SaeLoader.ConfigFile)}' has " +
                        $"no {SaeLoader.WeightsFile} beside it");
                wanted = [InFolder(SaeLoader.ConfigFile), InFolder(SaeLoader.WeightsFile)];
            }
            else if (files.Contains(InFolder(GemmaScopeLayout.ParamsName)))
                wanted = [InFolder(GemmaScopeLayout.ParamsName)];
            else
            {
                var found = files.Where(f => f.EndsWith("/" + SaeLoader.ConfigFile, StringComparison.Ordinal)
                    || f.EndsWith("/" + GemmaScopeLayout.ParamsName, StringComparison.Ordinal))
                    .Select(f => f[..f.LastIndexOf('/')]).Distinct().Take(5).ToList();
                throw new SaeException($"hub repository {repo} has no SAE in "
                    + $"'{(folder.Length == 0 ? "(its root)" : folder)}': expected {InFolder(SaeLoader.ConfigFile)} "
                    + $"(SAELens) or {InFolder(GemmaScopeLayout.ParamsName)} (Gemma Scope)"
                    + (found.Count == 0 ? "" : $"; SAE folders there include {string.Join(", ", found)}"));
            }
            var snapshot = client.SnapshotDownloadAsync(repo, wanted).GetAwaiter().GetResult();
            return folder.Length == 0 ? snapshot : Path.Combine([snapshot, .. parts[2..]]);
        }
        catch (HubException e)
        {
            throw new SaeException(
                $"'{id}' is not a local SAE folder or file, and as a hub repository id: {e.Message}");
        }
    }
}
