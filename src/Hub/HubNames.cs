using System.Text.RegularExpressions;

namespace Lens.Hub;

/// <summary>Checks on repo ids, file names and revisions before they become URLs and cache paths.</summary>
internal static partial class HubNames
{
    [GeneratedRegex("^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)?[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();

    [GeneratedRegex("^[A-Za-z0-9_.-]+$")]
    private static partial Regex EtagPattern();

    public static bool IsCommitHash(string revision) => CommitPattern().IsMatch(revision);

    /// <summary>LFS files have the sha256 of their content as ETag.</summary>
    public static bool IsSha256(string etag) => Sha256Pattern().IsMatch(etag);

    public static void CheckRepoId(string repoId)
    {
        ArgumentNullException.ThrowIfNull(repoId);
        // The hub forbids "--" and ".." in names; "--" is also the cache's separator.
        if (!RepoIdPattern().IsMatch(repoId) || repoId.Contains("--") || repoId.Contains(".."))
            throw new ArgumentException(
                $"'{repoId}' is not a hub repository id (expected 'org/name' or 'name' of letters, digits, '_', '-', " +
                    $"'.').", nameof(repoId));
    }

    public static void CheckFilename(string filename)
    {
        ArgumentNullException.ThrowIfNull(filename);
        if (filename.Length == 0 || filename.Contains('\\') || filename.Contains('\0') ||
            filename.Split('/').Any(part => part is "" or "." or ".."))
            throw new ArgumentException(
                $"'{filename}' is not a file path inside a repository (use '/'-separated names without '.', '..' or " +
                    $"empty parts).", nameof(filename));
    }

    public static void CheckRevision(string revision)
    {
        ArgumentNullException.ThrowIfNull(revision);
        if (revision.Length == 0 || revision.Contains('\\') || revision.Contains('\0') ||
            revision.Split('/').Any(part => part is "" or "." or ".."))
            throw new ArgumentException($"'{revision}' is not a revision (a branch, tag or commit hash).",
                nameof(revision));
    }

    /// <summary>The ETag becomes a file name in blobs/, so it must not be able to point elsewhere.</summary>
    public static bool IsSafeEtag(string etag) => EtagPattern().IsMatch(etag) && etag is not "." and not "..";

    /// <summary>Strips the weak marker and quotes: <c>W/"abc"</c> → <c>abc</c>.</summary>
    public static string NormalizeEtag(string etag)
    {
        var e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal)) e = e[2..];
        return e.Trim('"');
    }
}
