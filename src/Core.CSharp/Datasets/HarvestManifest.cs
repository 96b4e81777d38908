using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Lens.IO;

namespace Lens.Datasets;

/// <summary>What decides a harvest's rows and values: an existing output made with other settings is refused.</summary>
public sealed record HarvestSettings(
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("corpus_sha256")] string CorpusSha256,
    [property: JsonPropertyName("hooks")] IReadOnlyList<string> Hooks,
    [property: JsonPropertyName("context")] int Context,
    [property: JsonPropertyName("batch")] int Batch,
    [property: JsonPropertyName("dtype")] string Dtype,
    [property: JsonPropertyName("max_tokens")] long? MaxTokens,
    [property: JsonPropertyName("max_file_bytes")] long MaxFileBytes)
{
    /// <summary>The first setting that differs from <paramref name="other"/>, as "name: this vs other", or
    /// null.</summary>
    public string? Difference(HarvestSettings other)
    {
        if (Model != other.Model) return $"model: '{Model}' vs '{other.Model}'";
        if (CorpusSha256 != other.CorpusSha256)
            return $"corpus (SHA-256 {CorpusSha256[..12]}… vs {other.CorpusSha256[..12]}…)";
        if (!Hooks.SequenceEqual(other.Hooks))
            return $"hooks: [{string.Join(", ", Hooks)}] vs [{string.Join(", ", other.Hooks)}]";
        if (Context != other.Context) return $"context: {Context} vs {other.Context}";
        if (Batch != other.Batch) return $"batch: {Batch} vs {other.Batch}";
        if (Dtype != other.Dtype) return $"dtype: {Dtype} vs {other.Dtype}";
        if (MaxTokens != other.MaxTokens)
            return $"max tokens: {MaxTokens?.ToString(CultureInfo.InvariantCulture) ?? "none"} " +
                $"vs {other.MaxTokens?.ToString(CultureInfo.InvariantCulture) ?? "none"}";
        if (MaxFileBytes != other.MaxFileBytes) return $"max file bytes: {MaxFileBytes} vs {other.MaxFileBytes}";
        return null;
    }

    /// <summary>datasets' 16-hex-digit fingerprint, here from the settings: a merged dataset has the single
    /// run's.</summary>
    public string Fingerprint() =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(this))))[..16];
}

/// <summary>
/// <c>lens-harvest.json</c> in a dataset folder (datasets ignores it): the settings, which rows of the corpus's
/// packed rows the folder holds (<c>first_row</c>, <c>rows</c>, of <c>corpus_rows</c>), the shard when it is one,
/// its data files, and which of them are complete. Rewritten (atomically) after each file.
/// </summary>
public sealed record HarvestManifest(
    [property: JsonPropertyName("producer")] string Producer,
    [property: JsonPropertyName("settings")] HarvestSettings Settings,
    [property: JsonPropertyName("shard_index")] int? ShardIndex,
    [property: JsonPropertyName("shard_count")] int? ShardCount,
    [property: JsonPropertyName("corpus_rows")] long CorpusRows,
    [property: JsonPropertyName("first_row")] long FirstRow,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("columns")] IReadOnlyList<DatasetColumn> Columns,
    [property: JsonPropertyName("files")] IReadOnlyList<string> Files,
    [property: JsonPropertyName("complete_files")] IReadOnlyList<string> CompleteFiles)
{
    public const string FileName = "lens-harvest.json";

    static readonly JsonSerializerOptions Options =
        new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public bool Complete => CompleteFiles.Count == Files.Count;

    public static HarvestManifest? TryRead(string folder)
    {
        var path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<HarvestManifest>(File.ReadAllText(path), Options)
                ?? throw new JsonException("null");
        }
        catch (JsonException e) { throw new HarvestException($"'{path}' is not a harvest manifest ({e.Message})"); }
    }

    public void Write(string folder) =>
        AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, Options) + "\n");
}
