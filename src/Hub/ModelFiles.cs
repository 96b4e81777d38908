using System.Text.RegularExpressions;

namespace Lens.Hub;

/// <summary>Picks, from a repository's file list, the files a model needs: config, weights, tokenizer.</summary>
public static partial class ModelFiles
{
    /// <summary>Files taken when present: configuration and tokenizer.</summary>
    public static readonly IReadOnlyList<string> Companions =
    [
        "config.json", "generation_config.json",
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "tokenizer.model",
    ];

    [GeneratedRegex(@"^model-\d+-of-\d+\.safetensors$")]
    private static partial Regex SafetensorsShard();

    [GeneratedRegex(@"^pytorch_model-\d+-of-\d+\.bin$")]
    private static partial Regex PytorchShard();

    /// <summary>
    /// The needed files among <paramref name="repoFiles"/> (top-level names as <see cref="HubClient.ListFilesAsync"/>
    /// gives them): the companions present, and one set of weights: <c>model.safetensors</c>, else
    /// <c>model.safetensors.index.json</c> with its <c>model-NNNNN-of-NNNNN.safetensors</c> shards, else the same
    /// for <c>pytorch_model.bin</c>. Throws a <see cref="HubException"/> when there are no weights of these kinds.
    /// </summary>
    public static IReadOnlyList<string> Choose(IEnumerable<string> repoFiles)
    {
        var files = new HashSet<string>(repoFiles, StringComparer.Ordinal);
        var chosen = Companions.Where(files.Contains).ToList();
        var weights =
            Single(files, "model.safetensors") ??
            Sharded(files, "model.safetensors.index.json", SafetensorsShard()) ??
            Single(files, "pytorch_model.bin") ??
            Sharded(files, "pytorch_model.bin.index.json", PytorchShard()) ??
            throw new HubException(HubErrorKind.NotFound,
                "The repository holds no model weights in a known layout (model.safetensors, " +
                "model.safetensors.index.json with model-NNNNN-of-NNNNN.safetensors shards, or pytorch_model.bin). " +
                $"Its files: {string.Join(", ", files.Order(StringComparer.Ordinal))}.");
        chosen.AddRange(weights);
        return chosen;
    }

    static List<string>? Single(HashSet<string> files, string name) => files.Contains(name) ? [name] : null;

    static List<string>? Sharded(HashSet<string> files, string index, Regex shard)
    {
        if (!files.Contains(index)) return null;
        var shards = files.Where(f => shard.IsMatch(f)).Order(StringComparer.Ordinal).ToList();
        return shards.Count == 0 ? null : [index, .. shards];
    }
}
