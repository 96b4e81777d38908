using System.Security.Cryptography;
using System.Text.Json;

namespace Lens.Hub;

/// <summary>
/// Downloads files of Hugging Face model repositories into the cache huggingface_hub uses (so files fetched by
/// Python's TransformerLens are reused, and the other way round). Safe to use from several tasks and processes.
/// </summary>
public sealed class HubClient : IDisposable
{
    readonly HubHttp _http;

    public HubOptions Options { get; }

    /// <summary>A client set up from the environment (see <see cref="HubOptions.FromEnvironment()"/>).</summary>
    public HubClient() : this(HubOptions.FromEnvironment()) { }

    public HubClient(HubOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        _http = new HubHttp(options);
    }

    /// <summary>The cached file if present, else downloads it; returns its path inside
    /// <c>snapshots/{commit}/</c>.</summary>
    public Task<string> DownloadFileAsync(string repoId, string filename, string revision = "main",
        CancellationToken ct = default) =>
        DownloadFileAsync(repoId, filename, revision, forceRefresh: false, ct);

    /// <summary>
    /// As <see cref="DownloadFileAsync(string,string,string,CancellationToken)"/>; with <paramref name="forceRefresh"/>
    /// the hub is asked where the revision is now even when the file is cached, and a cached blob is checked
    /// (size, and sha256 for LFS files) and downloaded again if it is wrong.
    /// </summary>
    public async Task<string> DownloadFileAsync(string repoId, string filename, string revision, bool forceRefresh,
        CancellationToken ct = default)
    {
        HubNames.CheckFilename(filename);
        HubNames.CheckRevision(revision);
        var layout = Layout(repoId);

        // Unlike huggingface_hub, which sends a HEAD to revalidate a branch or tag even when the file is cached,
        // a cached revision is trusted as is: no network at all on a warm cache (fast, works offline, no
        // rate limits). forceRefresh asks the hub again.
        if (!forceRefresh && layout.ResolveCommit(revision) is { } cachedCommit
            && layout.ExistingPointer(cachedCommit, filename) is { } cached)
            return cached;

        if (Options.Offline) throw NotCachedOffline(layout, [filename], revision);
        var (pointer, commit) = await FetchAsync(layout, filename, revision, forceRefresh, ct).ConfigureAwait(false);
        layout.WriteRef(revision, commit);
        return pointer;
    }

    /// <summary>Downloads the given files of one revision (each as needed) and returns the snapshot folder holding
    /// them.</summary>
    public Task<string> SnapshotDownloadAsync(string repoId, IEnumerable<string> filenames, string revision = "main",
        CancellationToken ct = default) =>
        SnapshotDownloadAsync(repoId, filenames, revision, forceRefresh: false, ct);

    /// <summary>
    /// As <see cref="SnapshotDownloadAsync(string,IEnumerable{string},string,CancellationToken)"/>. All files come from
    /// one commit: the one the revision is at in the cache when every file is cached there (no network), otherwise
    /// the one the hub reports for the revision now.
    /// </summary>
    public async Task<string> SnapshotDownloadAsync(string repoId, IEnumerable<string> filenames, string revision,
        bool forceRefresh, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(filenames);
        var files = filenames.Distinct(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new ArgumentException("No files were named to download.", nameof(filenames));
        files.ForEach(HubNames.CheckFilename);
        HubNames.CheckRevision(revision);
        var layout = Layout(repoId);

        if (!forceRefresh && layout.ResolveCommit(revision) is { } cachedCommit &&
            files.All(f => layout.ExistingPointer(cachedCommit, f) is not null))
            return layout.SnapshotDir(cachedCommit);

        if (Options.Offline) throw NotCachedOffline(layout, files, revision);
        var commit = HubNames.IsCommitHash(revision)
            ? revision
            : (await RepoInfoAsync(repoId, revision, ct).ConfigureAwait(false)).Commit;
        foreach (var file in files)
        {
            if (!forceRefresh && layout.ExistingPointer(commit, file) is not null) continue;
            var (_, fileCommit) = await FetchAsync(layout, file, commit, forceRefresh, ct).ConfigureAwait(false);
            if (fileCommit != commit)
                throw new HubException(HubErrorKind.Protocol,
                    $"The hub reported commit {fileCommit} for '{file}' of '{repoId}' when asked for commit {commit}.");
        }
        layout.WriteRef(revision, commit);
        return layout.SnapshotDir(commit);
    }

    /// <summary>
    /// The files of a repository at a revision ('/'-separated paths), from <c>GET
    /// {endpoint}/api/models/{repo}/revision/{revision}</c>.
    /// Offline, the files of the cached snapshot of that revision (which may be fewer than the repository has).
    /// </summary>
    public async Task<IReadOnlyList<string>> ListFilesAsync(string repoId, string revision = "main",
        CancellationToken ct = default)
    {
        HubNames.CheckRevision(revision);
        var layout = Layout(repoId);
        if (Options.Offline)
        {
            if (layout.ResolveCommit(revision) is { } commit && Directory.Exists(layout.SnapshotDir(commit)))
                return RepoCacheLayout.FilesIn(layout.SnapshotDir(commit));
            throw new HubException(HubErrorKind.Offline,
                $"Offline mode (HF_HUB_OFFLINE) is on and repository '{repoId}' has no cached snapshot of revision " +
                $"'{revision}' " +
                $"to list (looked in {layout.Root}).");
        }
        return (await RepoInfoAsync(repoId, revision, ct).ConfigureAwait(false)).Files;
    }

    /// <summary>HEAD, then the blob under its lock if the cache lacks it, then the snapshot link. Returns the link and
    /// the commit.</summary>
    async Task<(string Pointer, string Commit)> FetchAsync(RepoCacheLayout layout, string filename, string revision,
        bool forceRefresh, CancellationToken ct)
    {
        var meta = await HeadAsync(layout.RepoId, filename, revision, ct).ConfigureAwait(false);
        if (!forceRefresh)
        {
            if (layout.ExistingPointer(meta.Commit, filename) is { } present) return (present, meta.Commit);
            if (File.Exists(layout.BlobPath(meta.Etag)))
                return (layout.LinkPointer(meta.Commit, filename, meta.Etag), meta.Commit);
        }
        using (await BlobLock.AcquireAsync(layout.LockPath(meta.Etag), Options.LockTimeout, ct).ConfigureAwait(false))
        {
            var blob = layout.BlobPath(meta.Etag);
            if (forceRefresh && File.Exists(blob) && !await BlobMatchesAsync(blob, meta, ct).ConfigureAwait(false))
                File.Delete(blob);
            // Another process may have finished this blob while we waited for the lock.
            if (!File.Exists(blob))
                await new BlobDownload(_http, layout, meta, filename, revision, Options.Progress).RunAsync(ct)
                    .ConfigureAwait(false);
            return (layout.LinkPointer(meta.Commit, filename, meta.Etag), meta.Commit);
        }
    }

    /// <summary>The hub's metadata of a file, read from the first answer that is not a relative redirect.</summary>
    async Task<HubFileMetadata> HeadAsync(string repoId, string filename, string revision, CancellationToken ct)
    {
        var url =
            new Uri($"{_http.EndpointText}/{repoId}/resolve/{Uri.EscapeDataString(revision)}/{EscapePath(filename)}");
        using var response =
            await _http.SendAsync(HttpMethod.Head, url, HubHttp.Redirects.RelativeOnly, null, ct).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        var answered = response.RequestMessage?.RequestUri ?? url;
        Uri location;
        if (status is >= 300 and < 400 && response.Headers.Location is { } redirect)
            location = redirect.IsAbsoluteUri ? redirect : new Uri(answered, redirect);
        else if (response.IsSuccessStatusCode)
            location = answered;
        else
            throw HubErrors.ForResponse(response, _http, repoId, filename, revision);

        string Missing(string header) =>
            $"The answer of {_http.Describe(answered)} to HEAD {answered} has no {header} header; is HF_ENDPOINT " +
            $"({_http.EndpointText}) a Hugging Face hub?";

        var commit = HubHttp.Header(response, "X-Repo-Commit")?.Trim();
        if (commit is null || !HubNames.IsCommitHash(commit))
            throw new HubException(HubErrorKind.Protocol,
                commit is null ? Missing("X-Repo-Commit") : $"The hub sent '{commit}' as the commit of '{filename}'.");

        // LFS files: the answer redirects to a CDN and names the real blob in X-Linked-Etag / X-Linked-Size.
        var rawEtag = HubHttp.Header(response, "X-Linked-Etag") ?? HubHttp.Header(response, "ETag")
            ?? throw new HubException(HubErrorKind.Protocol, Missing("ETag"));
        var etag = HubNames.NormalizeEtag(rawEtag);
        if (!HubNames.IsSafeEtag(etag))
            throw new HubException(HubErrorKind.Protocol,
                $"The hub sent the ETag '{rawEtag}' for '{filename}', which cannot name a cache file.");

        long size;
        if (HubHttp.Header(response, "X-Linked-Size") is { } linkedSize)
        {
            if (!long.TryParse(linkedSize, out size) || size < 0)
                throw new HubException(HubErrorKind.Protocol,
                    $"The hub sent the size '{linkedSize}' for '{filename}'.");
        }
        else
        {
            size = response.Content.Headers.ContentLength
                ?? throw new HubException(HubErrorKind.Protocol, Missing("Content-Length"));
        }
        return new HubFileMetadata(commit, etag, size, location);
    }

    sealed record RepoInfo(string Commit, IReadOnlyList<string> Files);

    async Task<RepoInfo> RepoInfoAsync(string repoId, string revision, CancellationToken ct)
    {
        var url = new Uri($"{_http.EndpointText}/api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");
        using var response =
            await _http.SendAsync(HttpMethod.Get, url, HubHttp.Redirects.All, null, ct).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw HubErrors.ForResponse(response, _http, repoId, null, revision);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_http.StallTimeout);
        string json;
        try
        {
            json = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or HttpRequestException
            || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            throw new HubException(HubErrorKind.Network,
                $"Reading the file list of '{repoId}' from {_http.Describe(url)} failed: {e.Message}", e);
        }

        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            var sha =
                root.TryGetProperty("sha", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
            if (sha is null || !HubNames.IsCommitHash(sha))
                throw new HubException(HubErrorKind.Protocol,
                    $"The hub's description of '{repoId}' at '{revision}' has no commit 'sha'.");
            var files = new List<string>();
            if (root.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array)
                foreach (var sibling in siblings.EnumerateArray())
                    if (sibling.TryGetProperty("rfilename", out var name) && name.GetString() is { Length: > 0 } n)
                        files.Add(n);
            return new RepoInfo(sha, files);
        }
        catch (JsonException e)
        {
            throw new HubException(HubErrorKind.Protocol,
                $"The hub's description of '{repoId}' at '{revision}' is not JSON: {e.Message}", e);
        }
    }

    static async Task<bool> BlobMatchesAsync(string blob, HubFileMetadata meta, CancellationToken ct)
    {
        if (new FileInfo(blob).Length != meta.Size) return false;
        if (!HubNames.IsSha256(meta.Etag)) return true;
        await using var stream =
            new FileStream(blob, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false));
        return actual == meta.Etag;
    }

    RepoCacheLayout Layout(string repoId) => new(Options.CacheDir, repoId);

    static string EscapePath(string filename) => string.Join('/', filename.Split('/').Select(Uri.EscapeDataString));

    static HubException NotCachedOffline(RepoCacheLayout layout, IReadOnlyList<string> files, string revision)
    {
        var commit = layout.ResolveCommit(revision);
        var missing = commit is null ? files : files.Where(f => layout.ExistingPointer(commit, f) is null).ToList();
        var where = commit is null
            ? $"{layout.Root} (no refs/{revision} there)"
            : $"{layout.SnapshotDir(commit)}";
        var names = string.Join(", ", missing.Select(f => $"'{f}'"));
        return new HubException(HubErrorKind.Offline,
            $"Offline mode (HF_HUB_OFFLINE) is on and {names} of repository '{layout.RepoId}' at revision " +
            $"'{revision}' " +
            $"{(missing.Count == 1 ? "is" : "are")} not in the cache (looked in {where}). " +
            $"Download {(missing.Count == 1 ? "it" : "them")} " +
            "once while online, or set HF_HUB_CACHE to the cache that holds them.");
    }

    public void Dispose() => _http.Dispose();
}
