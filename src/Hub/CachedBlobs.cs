using System.Security.Cryptography;
using System.Text;
using Lens.IO;

namespace Lens.Hub;

/// <summary>
/// Whether the files of a cached snapshot are really there and whole, without the network. A snapshot file is a
/// link to a blob named by its hash (sha256 for LFS files, the git blob id for others), so a link whose blob was
/// deleted, or a blob whose content no longer has the hash it is named by (truncated, overwritten), is found here.
/// </summary>
public static class CachedBlobs
{
    /// <summary>The blob a snapshot file links to, or null when it is a plain file (a copy where links could not be
    /// made).</summary>
    public static string? BlobOf(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null) return null;
        try { return info.ResolveLinkTarget(returnFinalTarget: true)?.FullName; }
        catch (IOException) { return null; }
    }

    /// <summary>What is wrong with a snapshot file ("... links to blob X, which is missing", "... has sha256 Y"), or
    /// null when it is whole.</summary>
    public static string? Problem(string snapshotFile, string name)
    {
        var blob = BlobOf(snapshotFile);
        if (!LinkedFiles.IsPresent(snapshotFile))
            return blob is null
                ? $"'{name}' is missing"
                : $"'{name}' links to blob {Path.GetFileName(blob)}, which is missing";
        if (blob is null) return null;
        var etag = Path.GetFileName(blob);
        var length = new FileInfo(blob).Length;
        if (HubNames.IsSha256(etag))
        {
            using var stream = File.OpenRead(blob);
            var actual = Convert.ToHexStringLower(SHA256.HashData(stream));
            return actual == etag
                ? null
                : $"'{name}' is damaged: blob {etag} ({length} bytes) has sha256 {actual} (truncated or overwritten?)";
        }
        if (etag.Length == 40 && etag.All(char.IsAsciiHexDigitLower))
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
            hash.AppendData(Encoding.ASCII.GetBytes($"blob {length}\0"));
            using (var stream = File.OpenRead(blob))
            {
                var buffer = new byte[1 << 16];
                int read;
                while ((read = stream.Read(buffer)) > 0) hash.AppendData(buffer.AsSpan(0, read));
            }
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            return actual == etag
                ? null
                : $"'{name}' is damaged: blob {etag} ({length} bytes) has git id {actual} (truncated or overwritten?)";
        }
        return null;
    }

    /// <summary>The first problem of any file in a snapshot folder, or null when every one is whole.</summary>
    public static string? FirstProblem(string snapshotDir) =>
        Directory.EnumerateFiles(snapshotDir, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(".tmp", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(f => Problem(f, Path.GetRelativePath(snapshotDir, f).Replace('\\', '/')))
            .FirstOrDefault(p => p is not null);
}
