using System.Buffers;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace Lens.Hub;

/// <summary>
/// Downloads one blob into <c>blobs/{etag}.incomplete</c>, resuming from what an earlier try left there,
/// checks its size (and sha256 for LFS files) and only then renames it to <c>blobs/{etag}</c>. Runs under the
/// blob's lock. A broken connection keeps the partial file for the next call; wrong bytes are deleted.
/// </summary>
internal sealed class BlobDownload
{
    readonly HubHttp _http;
    readonly RepoCacheLayout _layout;
    readonly HubFileMetadata _meta;
    readonly string _filename;
    readonly string _revision;
    readonly IProgress<(string File, long Done, long Total)>? _progress;

    public BlobDownload(HubHttp http, RepoCacheLayout layout, HubFileMetadata meta, string filename, string revision,
        IProgress<(string File, long Done, long Total)>? progress)
    {
        _http = http;
        _layout = layout;
        _meta = meta;
        _filename = filename;
        _revision = revision;
        _progress = progress;
    }

    string Incomplete => _layout.IncompletePath(_meta.Etag);

    public async Task RunAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(_layout.BlobsDir);
        var expectedSha = HubNames.IsSha256(_meta.Etag) ? _meta.Etag : null;
        using var hash = expectedSha is null ? null : IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        await using (var file = new FileStream(Incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None,
            1 << 16, useAsync: true))
        {
            // A leftover longer than the file cannot be a prefix of it.
            if (file.Length > _meta.Size) file.SetLength(0);
            if (hash is not null && file.Length > 0) await HashPrefixAsync(file, hash, ct).ConfigureAwait(false);
            file.Seek(0, SeekOrigin.End);
            if (file.Length < _meta.Size) await FetchRestAsync(file, hash, ct).ConfigureAwait(false);
            await file.FlushAsync(ct).ConfigureAwait(false);
        }

        var got = new FileInfo(Incomplete).Length;
        if (got > _meta.Size)
            Reject($"the server sent {got} bytes where {_meta.Size} were announced");
        if (got < _meta.Size)
            throw Interrupted(got, "the server ended the answer early");
        if (hash is not null)
        {
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != expectedSha)
                Reject($"sha256 expected {expectedSha}, got {actual}");
        }
        File.Move(Incomplete, _layout.BlobPath(_meta.Etag), overwrite: true);
    }

    async Task FetchRestAsync(FileStream file, IncrementalHash? hash, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            var offset = file.Length;
            using var response = await _http.SendAsync(HttpMethod.Get, _meta.Location, HubHttp.Redirects.All,
                request => { if (offset > 0) request.Headers.Range = new RangeHeaderValue(offset, null); }, ct)
                .ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (status == 416 && offset > 0 && attempt == 0)
            {
                // The server cannot continue from our partial file (it changed, or is not a prefix): start over.
                Restart(file, hash);
                continue;
            }
            if (status == 206)
            {
                if (response.Content.Headers.ContentRange?.From != offset)
                {
                    if (attempt > 0)
                        throw new HubException(HubErrorKind.Protocol,
                            $"The server answered the range request for '{_filename}' from byte {offset} with " +
                            $"'{response.Content.Headers.ContentRange}'.");
                    Restart(file, hash);
                    continue;
                }
            }
            else if (status == 200)
            {
                if (offset > 0) Restart(file, hash); // the server ignored Range and sends the whole file
            }
            else
            {
                throw HubErrors.ForResponse(response, _http, _layout.RepoId, _filename, _revision);
            }
            await CopyBodyAsync(response, file, hash, ct).ConfigureAwait(false);
            return;
        }
    }

    async Task CopyBodyAsync(HttpResponseMessage response, FileStream file, IncrementalHash? hash, CancellationToken ct)
    {
        var done = file.Length;
        _progress?.Report((_filename, done, _meta.Size));
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            while (true)
            {
                stall.CancelAfter(_http.StallTimeout);
                int n;
                try
                {
                    n = await body.ReadAsync(buffer.AsMemory(), stall.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                {
                    throw Interrupted(done, $"no data for {_http.StallTimeout.TotalSeconds:0.#} s", e);
                }
                catch (Exception e) when (e is IOException or HttpRequestException)
                {
                    throw Interrupted(done, e.Message, e);
                }
                if (n == 0) break;
                await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                hash?.AppendData(buffer, 0, n);
                done += n;
                _progress?.Report((_filename, done, _meta.Size));
                if (done > _meta.Size) break; // too long already; RunAsync rejects it
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    static async Task HashPrefixAsync(FileStream file, IncrementalHash hash, CancellationToken ct)
    {
        file.Seek(0, SeekOrigin.Begin);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        try
        {
            int n;
            while ((n = await file.ReadAsync(buffer.AsMemory(), ct).ConfigureAwait(false)) > 0)
                hash.AppendData(buffer, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    static void Restart(FileStream file, IncrementalHash? hash)
    {
        file.SetLength(0);
        file.Seek(0, SeekOrigin.Begin);
        hash?.GetHashAndReset();
    }

    HubException Interrupted(long done, string reason, Exception? inner = null) =>
        new(HubErrorKind.Network,
            $"The download of '{_filename}' from '{_layout.RepoId}' stopped after {done} of {_meta.Size} bytes " +
            $"({reason}). " +
            $"The partial file '{Incomplete}' is kept; calling again resumes from it.", inner);

    /// <summary>Deletes the bad download, so nothing wrong is left where a complete file is expected, and
    /// throws.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    void Reject(string mismatch)
    {
        File.Delete(Incomplete);
        throw new HubException(HubErrorKind.Integrity,
            $"The download of '{_filename}' from '{_layout.RepoId}' at revision '{_revision}' is " +
            $"corrupt: {mismatch}. " +
            "It was deleted; try again, and if it persists, check HF_ENDPOINT and any proxy.");
    }
}
