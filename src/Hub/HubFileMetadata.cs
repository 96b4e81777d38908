namespace Lens.Hub;

/// <summary>
/// What the hub's HEAD on <c>/resolve/</c> says about a file: the commit the revision is at, the blob's ETag
/// (the content sha256 for LFS files), its size, and where to GET it (a CDN URL for LFS files).
/// </summary>
internal sealed record HubFileMetadata(string Commit, string Etag, long Size, Uri Location);
