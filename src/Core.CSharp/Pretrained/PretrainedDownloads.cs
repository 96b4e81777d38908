using Lens.Hub;

namespace Lens.Pretrained;

/// <summary>
/// Fetches a model repository's files (config, tokenizer, safetensors weights, else pickled ones) through the hub
/// client into the huggingface_hub cache, and returns the snapshot folder. A snapshot already
/// cached with its config and weights is used without any network access.
/// </summary>
public static class PretrainedDownloads
{
    /// <summary>The local folder of a repository's model files, downloading what is missing.</summary>
    public static string Fetch(string repoId, HubOptions? options = null, CancellationToken ct = default)
    {
        options ??= HubOptions.FromEnvironment();
        if (CachedSnapshot(repoId, options.CacheDir) is string cached) return cached;
        using var client = new HubClient(options);
        var files = client.ListFilesAsync(repoId, "main", ct).GetAwaiter().GetResult();
        var chosen = ModelFiles.Choose(files);
        return client.SnapshotDownloadAsync(repoId, chosen, "main", ct).GetAwaiter().GetResult();
    }

    /// <summary>The cached snapshot of "main" when it holds config.json and complete weights (safetensors, else pickled); else null.</summary>
    public static string? CachedSnapshot(string repoId, string? cacheDir = null)
    {
        string? commit;
        try { commit = HubCache.TryGetCachedCommit(repoId, "main", cacheDir); }
        catch (ArgumentException) { return null; }
        if (commit is null) return null;
        var dir = Path.Combine(cacheDir ?? HubCache.DefaultCacheDir(), HubCache.RepoFolderName(repoId), "snapshots", commit);
        if (!File.Exists(Path.Combine(dir, "config.json"))) return null;
        if (File.Exists(Path.Combine(dir, CheckpointWeights.SingleFile))) return dir;
        if (!CheckpointWeights.Exist(dir)) return null;
        try { using var _ = CheckpointWeights.Open(dir); return dir; }  // every shard the index names is present
        catch (CheckpointException) { return null; }
    }
}
