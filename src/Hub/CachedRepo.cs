namespace Lens.Hub;

/// <summary>One model repository in the cache, as <c>lens models</c> lists it.</summary>
/// <param name="RepoId">The hub id, <c>org/name</c>.</param>
/// <param name="Path">The <c>models--{org}--{name}</c> folder.</param>
/// <param name="SizeOnDisk">Bytes of the regular files under it (blobs, partial downloads, refs, snapshot files copied
/// where links failed); links count 0.</param>
/// <param name="Snapshots">The cached commits, newest first.</param>
public sealed record CachedRepo(string RepoId, string Path, long SizeOnDisk, IReadOnlyList<CachedSnapshot> Snapshots);

/// <summary>One cached commit of a repository.</summary>
/// <param name="Commit">The 40-hex commit hash (the folder name).</param>
/// <param name="Refs">The revisions (branches, tags) that refs/ maps to this commit.</param>
/// <param name="Files">The files present, '/'-separated and relative to the snapshot folder, sorted.</param>
/// <param name="LastModified">When the snapshot folder last changed.</param>
public sealed record CachedSnapshot(string Commit, IReadOnlyList<string> Refs, IReadOnlyList<string> Files,
    DateTime LastModified);
