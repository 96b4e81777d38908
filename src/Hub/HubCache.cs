namespace Lens.Hub;

/// <summary>Reads the huggingface_hub cache without any network access.</summary>
public static class HubCache
{
    const string ModelPrefix = "models--";

    /// <summary>HF_HOME, else <c>$XDG_CACHE_HOME/huggingface</c>, else <c>~/.cache/huggingface</c>.</summary>
    public static string HfHome() => HfHome(Environment.GetEnvironmentVariable, UserHome);

    /// <summary>HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else <c>{HfHome}/hub</c>.</summary>
    public static string DefaultCacheDir() => DefaultCacheDir(Environment.GetEnvironmentVariable, UserHome);

    static string UserHome => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    internal static string HfHome(Func<string, string?> env, string userHome)
    {
        if (env("HF_HOME") is { } hfHome && !string.IsNullOrWhiteSpace(hfHome)) return ExpandHome(hfHome, userHome);
        var cacheHome = env("XDG_CACHE_HOME") is { } xdg && !string.IsNullOrWhiteSpace(xdg)
            ? ExpandHome(xdg, userHome)
            : System.IO.Path.Combine(userHome, ".cache");
        return System.IO.Path.Combine(cacheHome, "huggingface");
    }

    internal static string DefaultCacheDir(Func<string, string?> env, string userHome)
    {
        foreach (var name in new[] { "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE" })
            if (env(name) is { } dir && !string.IsNullOrWhiteSpace(dir)) return ExpandHome(dir, userHome);
        return System.IO.Path.Combine(HfHome(env, userHome), "hub");
    }

    /// <summary><c>org/name</c> → <c>models--org--name</c>.</summary>
    public static string RepoFolderName(string repoId) => ModelPrefix + repoId.Replace("/", "--");

    /// <summary>
    /// The cached copy of a file at a revision (a branch or tag resolved through refs/, or a commit hash),
    /// or null when it is not cached. Never touches the network.
    /// </summary>
    public static string? TryGetCachedFile(string repoId, string filename, string revision = "main",
        string? cacheDir = null)
    {
        HubNames.CheckFilename(filename);
        HubNames.CheckRevision(revision);
        var layout = new RepoCacheLayout(cacheDir ?? DefaultCacheDir(), repoId);
        var commit = layout.ResolveCommit(revision);
        return commit is null ? null : layout.ExistingPointer(commit, filename);
    }

    /// <summary>The commit a revision was last seen at in the cache, or null.</summary>
    public static string? TryGetCachedCommit(string repoId, string revision = "main", string? cacheDir = null)
    {
        HubNames.CheckRevision(revision);
        var layout = new RepoCacheLayout(cacheDir ?? DefaultCacheDir(), repoId);
        var commit = layout.ResolveCommit(revision);
        return commit is not null && Directory.Exists(layout.SnapshotDir(commit)) ? commit : null;
    }

    /// <summary>The model repositories in the cache, sorted by id.</summary>
    public static IReadOnlyList<CachedRepo> ListCachedRepos(string? cacheDir = null)
    {
        var root = cacheDir ?? DefaultCacheDir();
        if (!Directory.Exists(root)) return [];
        var repos = new List<CachedRepo>();
        foreach (var dir in Directory.EnumerateDirectories(root, ModelPrefix + "*"))
        {
            var repoId = System.IO.Path.GetFileName(dir)[ModelPrefix.Length..].Replace("--", "/");
            repos.Add(new CachedRepo(repoId, dir, SizeOnDisk(dir), Snapshots(dir)));
        }
        return repos.OrderBy(r => r.RepoId, StringComparer.Ordinal).ToList();
    }

    static long SizeOnDisk(string repoDir)
    {
        long total = 0;
        foreach (var file in new DirectoryInfo(repoDir).EnumerateFiles("*", SearchOption.AllDirectories))
            if (file.LinkTarget is null) total += file.Length;
        return total;
    }

    static IReadOnlyList<CachedSnapshot> Snapshots(string repoDir)
    {
        var snapshotsDir = System.IO.Path.Combine(repoDir, "snapshots");
        if (!Directory.Exists(snapshotsDir)) return [];
        var refsByCommit = ReadRefs(System.IO.Path.Combine(repoDir, "refs"));
        var snapshots = new List<CachedSnapshot>();
        foreach (var dir in new DirectoryInfo(snapshotsDir).EnumerateDirectories())
        {
            var files = RepoCacheLayout.FilesIn(dir.FullName);
            var refs = refsByCommit.TryGetValue(dir.Name, out var r) ? r : [];
            snapshots.Add(new CachedSnapshot(dir.Name, refs, files, dir.LastWriteTimeUtc));
        }
        return snapshots.OrderByDescending(s => s.LastModified).ToList();
    }

    static Dictionary<string, List<string>> ReadRefs(string refsDir)
    {
        var map = new Dictionary<string, List<string>>();
        if (!Directory.Exists(refsDir)) return map;
        foreach (var file in Directory.EnumerateFiles(refsDir, "*", SearchOption.AllDirectories))
        {
            if (file.EndsWith(".tmp", StringComparison.Ordinal)) continue; // a ref being written
            string commit;
            try { commit = File.ReadAllText(file).Trim(); }
            catch (IOException) { continue; }
            var revision = System.IO.Path.GetRelativePath(refsDir, file).Replace('\\', '/');
            if (!map.TryGetValue(commit, out var list)) map[commit] = list = [];
            list.Add(revision);
        }
        foreach (var list in map.Values) list.Sort(StringComparer.Ordinal);
        return map;
    }

    static string ExpandHome(string path, string userHome)
    {
        path = path.Trim();
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal)) path = userHome + path[1..];
        return System.IO.Path.GetFullPath(path);
    }
}
