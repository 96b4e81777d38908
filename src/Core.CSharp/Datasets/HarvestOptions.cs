namespace Lens.Datasets;

/// <summary>
/// What <see cref="ActivationHarvest.Run"/> does: the corpus, the hooks (globs or shorthand names, each must match
/// a hook point), the context (tokens per row, BOS included), the output folder, rows per forward, the stored
/// dtype (float32 or float16: Arrow and datasets have no bfloat16), an optional cap on tokens (the first
/// <c>MaxTokens / Context</c> rows), the shard (<c>ShardIndex</c> of <c>ShardCount</c>), and the largest data file.
/// </summary>
public sealed record HarvestOptions(
    string Corpus,
    IReadOnlyList<string> Hooks,
    int Context,
    string Out,
    int Batch = 32,
    string Dtype = "float32",
    long? MaxTokens = null,
    int ShardIndex = 0,
    int ShardCount = 1,
    long MaxFileBytes = DatasetLayout.DefaultMaxFileBytes)
{
    /// <summary>The folder this run writes: <c>Out</c>, or <c>Out/shard-I-of-N</c> for a shard.</summary>
    public string Target => ShardCount == 1 ? Out : Path.Combine(Out, ShardFolder(ShardIndex, ShardCount));

    public static string ShardFolder(int index, int count) => $"shard-{index}-of-{count}";

    /// <summary>Where the folder is built before it is renamed to <see cref="Target"/>: a hidden sibling.</summary>
    public static string PartialFolder(string target)
    {
        var full = Path.GetFullPath(target).TrimEnd(Path.DirectorySeparatorChar);
        return Path.Combine(Path.GetDirectoryName(full)!, "." + Path.GetFileName(full) + ".partial");
    }
}

/// <summary>A harvest's progress: rows of this run's share written, of all, and the rate.</summary>
public sealed record HarvestProgress(long RowsDone, long RowsTotal, int Context, double TokensPerSecond,
    TimeSpan? Remaining);

/// <summary>What a harvest did: the folder, its rows and columns, the rows it computed now (0 when already complete),
/// the time.</summary>
public sealed record HarvestResult(string Folder, long Rows, IReadOnlyList<DatasetColumn> Columns, long RowsComputed,
    int FilesReused, TimeSpan Elapsed);
