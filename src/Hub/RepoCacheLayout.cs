using Lens.IO;

namespace Lens.Hub;

/// <summary>
/// Where huggingface_hub keeps one model repository: <c>models--{org}--{name}/</c> with <c>blobs/{etag}</c>,
/// <c>snapshots/{commit}/{filename}</c> (links to the blobs) and <c>refs/{revision}</c> (a commit hash);
/// download locks live in <c>.locks/models--{org}--{name}/{etag}.lock</c> like huggingface_hub's, so a
/// Python process downloading the same blob waits on the same lock (both use flock).
/// </summary>
internal sealed class RepoCacheLayout
{
    public string CacheDir { get; }
    public string RepoId { get; }
    public string Root { get; }

    public RepoCacheLayout(string cacheDir, string repoId)
    {
        HubNames.CheckRepoId(repoId);
        CacheDir = Path.GetFullPath(cacheDir);
        RepoId = repoId;
        Root = Path.Combine(CacheDir, HubCache.RepoFolderName(repoId));
    }

    public string BlobsDir => Path.Combine(Root, "blobs");
    public string SnapshotsDir => Path.Combine(Root, "snapshots");
    public string RefsDir => Path.Combine(Root, "refs");

    public string BlobPath(string etag) => Path.Combine(BlobsDir, etag);
    public string IncompletePath(string etag) => BlobPath(etag) + ".incomplete";
    public string LockPath(string etag) =>
        Path.Combine(CacheDir, ".locks", HubCache.RepoFolderName(RepoId), etag + ".lock");
    public string SnapshotDir(string commit) => Path.Combine(SnapshotsDir, commit);

    public string PointerPath(string commit, string filename) =>
        Path.Combine([SnapshotDir(commit), .. filename.Split('/')]);

    public string RefPath(string revision) => Path.Combine([RefsDir, .. revision.Split('/')]);

    /// <summary>The commit a revision stands for in this cache: itself when it is a hash, else what refs/
    /// says.</summary>
    public string? ResolveCommit(string revision)
    {
        if (HubNames.IsCommitHash(revision)) return revision;
        var refPath = RefPath(revision);
        if (!File.Exists(refPath)) return null;
        try
        {
            var commit = File.ReadAllText(refPath).Trim();
            return HubNames.IsCommitHash(commit) ? commit : null;
        }
        catch (IOException) { return null; }
    }

    /// <summary>The snapshot file when it exists and, if it is a link, its blob exists too.</summary>
    public string? ExistingPointer(string commit, string filename)
    {
        var pointer = PointerPath(commit, filename);
        return LinkedFiles.IsPresent(pointer) ? pointer : null;
    }

    /// <summary>The files present in a snapshot ('/'-separated, sorted); links whose blob is gone are left
    /// out.</summary>
    public static IReadOnlyList<string> FilesIn(string snapshotDir) =>
        !Directory.Exists(snapshotDir)
            ? []
            : new DirectoryInfo(snapshotDir).EnumerateFiles("*", SearchOption.AllDirectories)
                .Where(f => LinkedFiles.IsPresent(f.FullName) && !f.Name.EndsWith(".tmp", StringComparison.Ordinal))
                .Select(f => Path.GetRelativePath(snapshotDir, f.FullName).Replace('\\', '/'))
                .Order(StringComparer.Ordinal)
                .ToList();

    /// <summary>Records that <paramref name="revision"/> is at <paramref name="commit"/> (atomically: write then
    /// rename).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        var refPath = RefPath(revision);
        if (File.Exists(refPath) && File.ReadAllText(refPath).Trim() == commit) return;
        Lens.IO.AtomicFile.WriteAllText(refPath, commit);
    }

    /// <summary>
    /// Makes <c>snapshots/{commit}/{filename}</c> a relative link to the blob (as huggingface_hub does), or a copy
    /// where links cannot be made. The link is made beside the target and renamed over it, so concurrent callers
    /// never see a missing or half-made pointer.
    /// </summary>
    public string LinkPointer(string commit, string filename, string etag)
    {
        var pointer = PointerPath(commit, filename);
        var blob = BlobPath(etag);
        var dir = Path.GetDirectoryName(pointer)!;
        Directory.CreateDirectory(dir);
        var tmp = pointer + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            try
            {
                File.CreateSymbolicLink(tmp, Path.GetRelativePath(dir, blob));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                File.Copy(blob, tmp, overwrite: true);
            }
            File.Move(tmp, pointer, overwrite: true);
        }
        finally
        {
            File.Delete(tmp); // a no-op once renamed; removes a leftover link or copy after a failure
        }
        return pointer;
    }
}
