using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Types;
using static TorchSharp.torch;

namespace Lens.Datasets;

/// <summary>
/// An activation dataset read back: one <c>datasets</c> folder (<c>state.json</c> lists its data files), or a
/// folder of complete harvest shards <c>shard-I-of-N/</c> read as one dataset in shard order. Rows are read one
/// record batch at a time, so memory stays at a batch whatever the dataset's size.
/// </summary>
public sealed class ActivationDataset
{
    public string Path { get; }
    public IReadOnlyList<string> Files { get; }
    public IReadOnlyList<DatasetColumn> Columns { get; }

    ActivationDataset(string path, IReadOnlyList<string> files, IReadOnlyList<DatasetColumn> columns)
    {
        Path = path;
        Files = files;
        Columns = columns;
    }

    public static ActivationDataset Open(string path)
    {
        if (!Directory.Exists(path)) throw new HarvestException($"dataset '{path}': no such folder");
        var files =
            File.Exists(System.IO.Path.Combine(path, DatasetLayout.StateFile)) ? DataFiles(path) : ShardFiles(path);
        var schema = ArrowColumns.ReadSchema(files[0]);
        var columns = schema.FieldsList.Select(f => Column(f, files[0])).ToList();
        return new ActivationDataset(path, files, columns);
    }

    static DatasetColumn Column(Field field, string file)
    {
        var (shape, value) = ArrowColumns.RowShape(field.DataType);
        var dtype = value switch
        {
            Int64Type => "int64",
            FloatType => "float32",
            HalfFloatType => "float16",
            _ => throw new HarvestException(
                $"'{file}': column '{field.Name}' holds {value.Name} values, not int64, float32 or float16"),
        };
        return new DatasetColumn(field.Name, shape, dtype);
    }

    /// <summary>The data files a save_to_disk folder's state.json lists, checked to exist.</summary>
    public static IReadOnlyList<string> DataFiles(string folder)
    {
        var statePath = System.IO.Path.Combine(folder, DatasetLayout.StateFile);
        try
        {
            using var state = JsonDocument.Parse(File.ReadAllText(statePath));
            var files = state.RootElement.GetProperty("_data_files").EnumerateArray()
                .Select(f => System.IO.Path.Combine(folder, f.GetProperty("filename").GetString()!)).ToList();
            if (files.Count == 0) throw new HarvestException($"'{statePath}' lists no data files");
            foreach (var f in files)
                if (!File.Exists(f))
                    throw new HarvestException(
                        $"'{statePath}' lists '{System.IO.Path.GetFileName(f)}', which is missing");
            return files;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new HarvestException($"'{statePath}' is not a datasets state.json ({e.Message})");
        }
    }

    /// <summary>The complete shards of one harvest (shard-0-of-N … shard-(N−1)-of-N), in order, as their data
    /// files.</summary>
    public static IReadOnlyList<string> ShardFiles(string folder) =>
        ShardFolders(folder).SelectMany(DataFiles).ToList();

    public static IReadOnlyList<string> ShardFolders(string folder)
    {
        var shards = Directory.EnumerateDirectories(folder, "shard-*-of-*")
            .Select(d => (Dir: d, Parts: System.IO.Path.GetFileName(d).Split('-')))
            .Where(s => s.Parts.Length == 4 && int.TryParse(s.Parts[1], out _) && int.TryParse(s.Parts[3], out _))
            .Select(s => (s.Dir, Index: int.Parse(s.Parts[1], CultureInfo.InvariantCulture),
            Count: int.Parse(s.Parts[3], CultureInfo.InvariantCulture))).ToList();
        if (shards.Count == 0)
            throw new HarvestException($"'{folder}' is neither a dataset (no {DatasetLayout.StateFile}) nor a folder " +
                $"of harvest shards (no shard-I-of-N folders)");
        var counts = shards.Select(s => s.Count).Distinct().ToList();
        if (counts.Count > 1)
            throw new HarvestException($"'{folder}' holds shards of different counts " +
                $"({string.Join(", ", counts.Select(c => "of-" + c))}): keep one harvest's shards per folder");
        int n = counts[0];
        var ordered = new List<string>();
        for (int i = 0; i < n; i++)
        {
            var shard = System.IO.Path.Combine(folder, HarvestOptions.ShardFolder(i, n));
            if (!Directory.Exists(shard))
            {
                var partial = HarvestOptions.PartialFolder(shard);
                throw new HarvestException(Directory.Exists(partial)
                    ? $"shard {i} of {n} is not finished ('{partial}' is its partial folder): rerun that shard's " +
                        $"harvest with the same options"
                    : $"shard {i} of {n} is missing ('{shard}'): run its harvest with --shard {i}/{n}");
            }
            ordered.Add(shard);
        }
        return ordered;
    }

    /// <summary>Total rows: from the harvest manifests of the folders when every one has one, else by reading the
    /// files' record batches.</summary>
    public long RowCount => _rowCount ??= CountRows();

    long? _rowCount;

    long CountRows()
    {
        var folders = Files.Select(f => System.IO.Path.GetDirectoryName(f)!).Distinct().ToList();
        var manifests = folders.Select(HarvestManifest.TryRead).ToList();
        if (manifests.All(m => m is not null && m.Complete)) return manifests.Sum(m => m!.Rows);
        return Files.Sum(f => ArrowColumns.Batches(f).Sum(b => { using (b) return (long)b.Length; }));
    }

    public DatasetColumn Column(string name) => Columns.FirstOrDefault(c => c.Name == name)
        ?? throw new HarvestException(
        $"dataset '{Path}' has no column '{name}' (columns: {string.Join(", ", Columns.Select(c => c.Name))})");

    /// <summary>Rows of one column in order, <paramref name="rows"/> at a time (the last may be fewer): [n, shape...]
    /// as stored (int64, float32 or float16).</summary>
    public IEnumerable<Tensor> RowBatches(string column, int rows = 32)
    {
        if (rows < 1) throw new HarvestException($"rows per batch {rows}: at least one");
        var col = Column(column);
        var type =
            col.Dtype switch { "int64" => ScalarType.Int64, "float16" => ScalarType.Float16, _ => ScalarType.Float32 };
        var pending = new MemoryStream();
        int count = 0;
        foreach (var file in Files)
            foreach (var batch in ArrowColumns.Batches(file))
                using (batch)
                {
                    var bytes = ArrowColumns.FlatBytes(batch.Column(column)).ToArray();
                    for (int r = 0; r < batch.Length; r++)
                    {
                        pending.Write(bytes, checked((int)(r * col.BytesPerRow)), (int)col.BytesPerRow);
                        if (++count == rows) { yield return Emit(pending, count, col, type); count = 0; }
                    }
                }
        if (count > 0) yield return Emit(pending, count, col, type);
    }

    /// <summary>
    /// Rows <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> - 1 of one column, as
    /// stored
    /// ([count, shape...]), and the data files that hold them. Files before them are read only to count their rows;
    /// reading stops at the last row asked for.
    /// </summary>
    public (Tensor Rows, IReadOnlyList<string> Files) ReadRows(string column, long first, int count)
    {
        if (first < 0 || count < 1)
            throw new HarvestException($"rows {first}..{first + count}: give a first row ≥ 0 and at least one row");
        if (first + count > RowCount)
            throw new HarvestException($"dataset '{Path}' has {RowCount} rows (0..{RowCount - 1}): " +
                $"rows {first}..{first + count} (end excluded) are out of range");
        var col = Column(column);
        var type =
            col.Dtype switch { "int64" => ScalarType.Int64, "float16" => ScalarType.Float16, _ => ScalarType.Float32 };
        var bytes = new byte[checked(count * col.BytesPerRow)];
        var files = new List<string>();
        long at = 0, end = first + count;
        foreach (var file in Files)
        {
            if (at >= end) break;
            foreach (var batch in ArrowColumns.Batches(file))
                using (batch)
                {
                    long from = Math.Max(first, at), to = Math.Min(end, at + batch.Length);
                    if (from < to)
                    {
                        var flat = ArrowColumns.FlatBytes(batch.Column(column));
                        flat.Slice(checked((int)((from - at) * col.BytesPerRow)),
                            checked((int)((to - from) * col.BytesPerRow)))
                            .CopyTo(bytes.AsSpan(checked((int)((from - first) * col.BytesPerRow))));
                        if (!files.Contains(file)) files.Add(file);
                    }
                    at += batch.Length;
                    if (at >= end) break;
                }
        }
        if (at < end)
            throw new HarvestException($"dataset '{Path}' holds fewer rows than its manifests say ({at} < {end})");
        var t = empty([count, .. col.Shape.Select(d => (long)d)], dtype: type);
        bytes.CopyTo(t.bytes);
        return (t, files);
    }

    static Tensor Emit(MemoryStream pending, int rows, DatasetColumn col, ScalarType type)
    {
        var bytes = pending.ToArray();
        pending.SetLength(0);
        var t = empty([rows, .. col.Shape.Select(d => (long)d)], dtype: type);
        bytes.CopyTo(t.bytes);
        return t;
    }

    /// <summary>
    /// A hook's activations as an SAE trainer takes them: float32 [n, d_in] batches of <paramref name="batchTokens"/>
    /// token positions (the last may be fewer), each row of the dataset giving its <c>context</c> positions and
    /// d_in the product of the remaining dimensions (hook_z [pos, head, d_head] gives head × d_head, as SAELens
    /// flattens it). With a seed, positions are shuffled through a buffer of <paramref name="bufferTokens"/>: when
    /// full, it is shuffled and half of it is emitted, as SAELens's mixing buffer does; the order depends only on
    /// the seed and the dataset. The caller disposes each batch.
    /// </summary>
    public IEnumerable<Tensor> ActivationBatches(string hook, int batchTokens, int? seed = null,
        int bufferTokens = 65536)
    {
        var col = Column(hook);
        if (col.Name == "token_ids") throw new HarvestException("token_ids are not activations: name a hook column");
        var context = Column("token_ids").Shape[0];
        if (col.Shape.Length < 2 || col.Shape[0] != context)
            throw new HarvestException($"column '{hook}' has rows of shape [{string.Join(", ", col.Shape)}], not " +
                $"[pos = {context}, d...]: its first dimension is not the token position");
        if (batchTokens < 1) throw new HarvestException($"batch tokens {batchTokens}: at least one");
        if (seed is not null && bufferTokens < 2 * batchTokens)
            throw new HarvestException($"buffer tokens {bufferTokens}: at least twice the batch ({batchTokens})");
        int dIn = col.ValuesPerRow / context;
        var positions = Positions(hook, col, dIn);
        return seed is int s
            ? Batch(Shuffled(positions, bufferTokens, new Random(s)), batchTokens, dIn)
            : Batch(positions, batchTokens, dIn);
    }

    IEnumerable<float[]> Positions(string hook, DatasetColumn col, int dIn)
    {
        foreach (var rows in RowBatches(hook, 1))
            using (rows)
            {
                using var flat = rows.to(ScalarType.Float32).reshape(-1, dIn);
                var values = flat.data<float>().ToArray();
                for (int p = 0; p < flat.shape[0]; p++) yield return values.AsSpan(p * dIn, dIn).ToArray();
            }
    }

    static IEnumerable<float[]> Shuffled(IEnumerable<float[]> items, int buffer, Random random)
    {
        var held = new List<float[]>(buffer);
        foreach (var item in items)
        {
            held.Add(item);
            if (held.Count < buffer) continue;
            Shuffle(held, random);
            int half = held.Count / 2;
            for (int i = 0; i < half; i++) yield return held[i];
            held.RemoveRange(0, half);
        }
        Shuffle(held, random);
        foreach (var item in held) yield return item;
    }

    static void Shuffle(List<float[]> items, Random random)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    static IEnumerable<Tensor> Batch(IEnumerable<float[]> positions, int size, int dIn)
    {
        var values = new float[size * dIn];
        int n = 0;
        foreach (var p in positions)
        {
            p.CopyTo(values, n * dIn);
            if (++n == size) { yield return tensor(values, [size, dIn]); values = new float[size * dIn]; n = 0; }
        }
        if (n > 0) yield return tensor(values.AsSpan(0, n * dIn).ToArray(), [n, dIn]);
    }
}
