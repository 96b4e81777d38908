using Lens.IO;
using Lens.Pretrained;

namespace Lens.Hub;

/// <summary>
/// Fetches a model repository's files (config, tokenizer, safetensors weights, else pickled ones) through the hub
/// client into the huggingface_hub cache, and returns the snapshot folder. A snapshot already
/// cached with its config and weights is used without any network access.
/// </summary>
public static class PretrainedDownloads
{
    /// <summary>The local folder of a repository's model files, downloading what is missing.</summary>
    /// <param name="verify">check each cached file's content against the hash its blob is named by (reads every byte);
    /// a damaged one is downloaded again, or, offline, reported.</param>
    public static string Fetch(string repoId, HubOptions? options = null, bool verify = false,
        CancellationToken ct = default)
    {
        options ??= HubOptions.FromEnvironment();
        var repair = false;
        if (CachedSnapshot(repoId, options.CacheDir) is string cached)
        {
            if (!verify || CachedBlobs.FirstProblem(cached) is not string problem) return cached;
            if (options.Offline)
                throw new HubException(HubErrorKind.Offline,
                    $"{repoId}: the cached {problem}; offline mode (HF_HUB_OFFLINE) is on, so it cannot be " +
                    $"downloaded again");
            repair = true;
        }
        using var client = new HubClient(options);
        var files = client.ListFilesAsync(repoId, "main", ct).GetAwaiter().GetResult();
        var chosen = ModelFiles.Choose(files);
        return client.SnapshotDownloadAsync(repoId, chosen, "main", forceRefresh: repair, ct).GetAwaiter().GetResult();
    }

    /// <summary>The cached snapshot of "main" when it holds config.json and complete weights (safetensors, else
    /// pickled); else null.</summary>
    public static string? CachedSnapshot(string repoId, string? cacheDir = null)
    {
        string? commit;
        try { commit = HubCache.TryGetCachedCommit(repoId, "main", cacheDir); }
        catch (ArgumentException) { return null; }
        if (commit is null) return null;
        var dir =
            Path.Combine(cacheDir ?? HubCache.DefaultCacheDir(), HubCache.RepoFolderName(repoId), "snapshots", commit);
        if (!LinkedFiles.IsPresent(Path.Combine(dir, "config.json"))) return null;
        var single = Path.Combine(dir, CheckpointWeights.SingleFile);
        if (LinkedFiles.IsPresent(single)) return dir;
        if (File.Exists(single)) return null;  // a snapshot link whose blob was deleted
        if (!CheckpointWeights.Exist(dir)) return null;
        try { using var _ = CheckpointWeights.Open(dir); return dir; }  // every shard the index names is present
        catch (Exception e) when (e is CheckpointException or IOException) { return null; }
    }
}
