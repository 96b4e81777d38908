using System.Security.Cryptography;
using Apache.Arrow;
using Lens.Tokenization;

namespace Lens.Datasets;

/// <summary>
/// A harvest's input: text (<c>.txt</c>, a folder of <c>.txt</c>, <c>.jsonl</c>), packed into rows by
/// <see cref="TokenPacking"/>; or pre-tokenized rows from Arrow stream files (one <c>.arrow</c> file, or a folder
/// written by <c>datasets.save_to_disk</c>) whose <c>tokens</c>, <c>input_ids</c> or <c>token_ids</c> column holds rows
/// of exactly the context length, taken as they are; or Parquet (a <c>.parquet</c> file, or a folder of them) read by
/// <see cref="ParquetCorpus"/> as token rows or as text documents.
/// </summary>
public sealed class HarvestCorpus
{
    public string Path { get; }
    public bool PreTokenized { get; }
    readonly IReadOnlyList<string> _files;
    readonly ParquetCorpus.Layout? _parquet;

    HarvestCorpus(string path, bool preTokenized, IReadOnlyList<string> files, ParquetCorpus.Layout? parquet = null)
    {
        Path = path; PreTokenized = preTokenized; _files = files; _parquet = parquet;
    }

    static HarvestCorpus OpenParquet(string path, IReadOnlyList<string> files)
    {
        var layout = ParquetCorpus.Inspect(files);
        return new HarvestCorpus(path, layout.PreTokenized, files, layout);
    }

    public static HarvestCorpus Open(string path)
    {
        if (ParquetCorpus.IsParquet(path) && !Directory.Exists(path))
        {
            if (!File.Exists(path)) throw new HarvestException($"--corpus '{path}': no such file");
            return OpenParquet(path, [path]);
        }
        if (Directory.Exists(path) && File.Exists(System.IO.Path.Combine(path, "state.json")))
            return new HarvestCorpus(path, true, ActivationDataset.DataFiles(path));
        if (Directory.Exists(path)
            && Directory.EnumerateFiles(path, "*.parquet").Order(StringComparer.Ordinal)
            .ToList() is { Count: > 0 } parquetFiles)
        {
            if (Directory.EnumerateFiles(path, "*.txt").Any())
                throw new HarvestException(
                    $"--corpus '{path}': the folder holds both .txt and .parquet files; give a folder of one kind");
            return OpenParquet(path, parquetFiles);
        }
        if (path.EndsWith(".arrow", StringComparison.OrdinalIgnoreCase))
        {
            if (!File.Exists(path)) throw new HarvestException($"--corpus '{path}': no such file");
            return new HarvestCorpus(path, true, [path]);
        }
        return new HarvestCorpus(path, false, CorpusDocuments.Files(path));
    }

    /// <summary>SHA-256 of the files' names (relative to the corpus) and bytes, in reading order: an existing output is
    /// checked against it.</summary>
    public string Hash()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var file in _files)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(System.IO.Path.GetFileName(file) + "\n"));
            using var stream = File.OpenRead(file);
            int n;
            while ((n = stream.Read(buffer)) > 0) hash.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The rows of <paramref name="context"/> token ids, in order.</summary>
    public IEnumerable<long[]> Rows(ITokenizer? tokenizer, int context)
    {
        if (!PreTokenized)
        {
            if (tokenizer is null)
                throw new HarvestException($"--corpus '{Path}' is text but the model has no tokenizer: give a " +
                    $"pre-tokenized .arrow or .parquet corpus");
            var documents = _parquet is null
                ? _files.SelectMany(f => CorpusDocuments.Read(f))
                : _files.SelectMany(ParquetCorpus.Documents);
            return TokenPacking.Rows(documents, tokenizer, context);
        }
        if (_parquet is not null) return _files.SelectMany(f => ParquetCorpus.TokenRows(f, _parquet.Column, context));
        return _files.SelectMany(f => TokenRows(f, context));
    }

    /// <summary>The names a pre-tokenized corpus's token column goes by (SAELens's datasets), in the order tried, for
    /// Arrow and Parquet alike.</summary>
    internal static readonly string[] TokenColumns = ["tokens", "input_ids", "token_ids"];

    static IEnumerable<long[]> TokenRows(string file, int context)
    {
        foreach (var batch in ArrowColumns.Batches(file))
        {
            using (batch)
            {
                var name = TokenColumns.FirstOrDefault(c => batch.Schema.GetFieldIndex(c, StringComparer.Ordinal) >= 0)
                    ?? throw new HarvestException($"--corpus '{file}': no 'tokens', 'input_ids' or 'token_ids' " +
                    $"column (columns: {string.Join(", ", batch.Schema.FieldsList.Select(f => f.Name))})");
                var column = batch.Column(name);
                for (int r = 0; r < batch.Length; r++) yield return Row(column, r, file, name, context);
            }
        }
    }

    static long[] Row(IArrowArray column, int r, string file, string name, int context)
    {
        IArrowArray values = column switch
        {
            ListArray list => list.GetSlicedValues(r),
            LargeListArray large => large.GetSlicedValues(r),
            FixedSizeListArray fixedList => fixedList.GetSlicedValues(r),
            _ => throw new HarvestException(
                $"--corpus '{file}': column '{name}' is {column.Data.DataType.Name}, not a list of token ids"),
        };
        if (values.Length != context)
            throw new HarvestException($"--corpus '{file}': row {r} of column '{name}' holds {values.Length} tokens " +
                $"but --context is {context}; pre-tokenized rows are taken as they are");
        return values switch
        {
            Int64Array a => a.Values.ToArray(),
            Int32Array a => a.Values.ToArray().Select(x => (long)x).ToArray(),
            UInt16Array a => a.Values.ToArray().Select(x => (long)x).ToArray(),
            UInt32Array a => a.Values.ToArray().Select(x => (long)x).ToArray(),
            _ => throw new HarvestException(
                $"--corpus '{file}': column '{name}' holds {values.Data.DataType.Name}, not integer token ids"),
        };
    }
}
