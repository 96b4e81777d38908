using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Lens.IO;

namespace Lens.Datasets;

/// <summary>
/// The folder <c>datasets.Dataset.save_to_disk</c> writes (datasets 4.x/5.x): Arrow IPC stream files
/// <c>data-0000K-of-0000M.arrow</c> whose schema carries <c>{"huggingface": {"info": {"features": ...}}}</c>,
/// <c>dataset_info.json</c> (asdict of DatasetInfo: the four empty strings and the features, keys sorted) and
/// <c>state.json</c> (the data files, the fingerprint, no format, no split). Files hold contiguous rows:
/// <c>int(bytes / max_shard_size) + 1</c> of them, split as <c>Dataset.shard(contiguous=True)</c> does.
/// </summary>
public static class DatasetLayout
{
    /// <summary>datasets' default max_shard_size for save_to_disk ("500MB").</summary>
    public const long DefaultMaxFileBytes = 500_000_000;

    public const string StateFile = "state.json", InfoFile = "dataset_info.json";

    public static string DataFileName(int index, int count) => $"data-{index:D5}-of-{count:D5}.arrow";

    /// <summary>Part <paramref name="index"/> of <paramref name="parts"/> of <paramref name="count"/> items, as
    /// <c>Dataset.shard(contiguous=True)</c>: the first <c>count % parts</c> parts get one more.</summary>
    public static (long Start, long End) Contiguous(long count, int parts, int index)
    {
        long div = count / parts, mod = count % parts;
        long start = div * index + Math.Min(index, mod);
        return (start, start + div + (index < mod ? 1 : 0));
    }

    public static int FileCount(long rows, long bytesPerRow, long maxFileBytes) =>
        (int)Math.Max(1, Math.Min(Math.Max(rows, 1), rows * bytesPerRow / maxFileBytes + 1));

    /// <summary>The schema metadata value under "huggingface", as ArrowWriter's json.dumps writes it.</summary>
    public static string SchemaMetadata(IReadOnlyList<DatasetColumn> columns) =>
        $"{{\"info\": {{\"features\": {FeaturesJson(columns)}}}}}";

    static string FeaturesJson(IReadOnlyList<DatasetColumn> columns) =>
        "{" + string.Join(", ", columns.Select(c => $"{JsonSerializer.Serialize(c.Name)}: {c.FeatureJson()}")) + "}";

    static readonly JsonWriterOptions Indented =
        new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>dataset_info.json as save_to_disk writes it (json.dump, indent=2, first-level keys sorted, no final
    /// newline).</summary>
    public static string InfoJson(IReadOnlyList<DatasetColumn> columns)
    {
        using var features = JsonDocument.Parse(FeaturesJson(columns));
        return Write(w =>
        {
            w.WriteStartObject();
            w.WriteString("citation", "");
            w.WriteString("description", "");
            w.WritePropertyName("features");
            features.RootElement.WriteTo(w);
            w.WriteString("homepage", "");
            w.WriteString("license", "");
            w.WriteEndObject();
        });
    }

    /// <summary>state.json as save_to_disk writes it (json.dump, indent=2, sort_keys=True).</summary>
    public static string StateJson(IReadOnlyList<string> files, string fingerprint) => Write(w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("_data_files");
        foreach (var f in files) { w.WriteStartObject(); w.WriteString("filename", f); w.WriteEndObject(); }
        w.WriteEndArray();
        w.WriteString("_fingerprint", fingerprint);
        w.WriteNull("_format_columns");
        w.WriteStartObject("_format_kwargs");
        w.WriteEndObject();
        w.WriteNull("_format_type");
        w.WriteBoolean("_output_all_columns", false);
        w.WriteNull("_split");
        w.WriteEndObject();
    });

    static string Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, Indented)) write(w);
        return Encoding.UTF8.GetString(buffer.ToArray()).Replace("\r\n", "\n");
    }

    public static void WriteMetadata(string folder, IReadOnlyList<DatasetColumn> columns, IReadOnlyList<string> files,
        string fingerprint)
    {
        AtomicFile.WriteAllText(Path.Combine(folder, InfoFile), InfoJson(columns));
        AtomicFile.WriteAllText(Path.Combine(folder, StateFile), StateJson(files, fingerprint));
    }
}
