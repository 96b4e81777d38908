using System.Numerics;
using Parquet;
using Parquet.Data;
using Parquet.Schema;

namespace Lens.Datasets;

/// <summary>
/// A Parquet corpus (one <c>.parquet</c> file, or a folder of them in ordinal name order), read one row group at a
/// time: a list column named <c>tokens</c>, <c>input_ids</c> or <c>token_ids</c> (SAELens's pre-tokenized datasets)
/// gives rows of token ids taken as they are; otherwise a <c>text</c> string column gives one document per row, which
/// <see cref="TokenPacking"/> packs as it packs text files (<c>load_dataset("parquet")</c> then
/// <c>tokenize_and_concatenate</c>). Every file must have the same kind of column.
/// </summary>
public static class ParquetCorpus
{
    public sealed record Layout(bool PreTokenized, string Column);

    const string TextColumn = "text";

    static readonly Type[] TokenTypes =
        [typeof(long), typeof(int), typeof(short), typeof(sbyte), typeof(uint), typeof(ushort), typeof(byte)];

    public static bool IsParquet(string path) => path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);

    /// <summary>The column every file is read from, checked against each file's schema (only the footers are
    /// read).</summary>
    public static Layout Inspect(IReadOnlyList<string> files)
    {
        Layout? first = null;
        foreach (var file in files)
        {
            var layout = LayoutOf(file, ReadSchema(file));
            if (first is not null && layout != first)
                throw new HarvestException($"--corpus '{file}': reads column '{layout.Column}' but '{files[0]}' " +
                    $"reads column '{first.Column}'; every Parquet file of a corpus needs the same column");
            first = layout;
        }
        return first ?? throw new HarvestException("--corpus: no Parquet files");
    }

    static ParquetSchema ReadSchema(string file)
    {
        try { return ParquetReader.ReadSchemaAsync(file).GetAwaiter().GetResult(); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new HarvestException($"--corpus '{file}': not a readable Parquet file ({e.Message})");
        }
    }

    static Layout LayoutOf(string file, ParquetSchema schema)
    {
        string Columns() => string.Join(", ", schema.Fields.Select(f => f.Name));
        var tokens = HarvestCorpus.TokenColumns.Select(name => schema.Fields.FirstOrDefault(f => f.Name == name))
            .FirstOrDefault(f => f is not null);
        if (tokens is not null)
        {
            var element = ElementOf(tokens)
                ?? throw new HarvestException($"--corpus '{file}': column '{tokens.Name}' is {Describe(tokens)}, not " +
                $"a list of token ids (columns: {Columns()})");
            if (!TokenTypes.Contains(element.ClrType))
                throw new HarvestException(
                    $"--corpus '{file}': column '{tokens.Name}' holds {element.ClrType.Name}, not integer token ids");
            return new Layout(true, tokens.Name);
        }
        var text = schema.Fields.FirstOrDefault(f => f.Name == TextColumn);
        if (text is null)
            throw new HarvestException($"--corpus '{file}': no 'tokens', 'input_ids' or 'token_ids' list column and " +
                $"no 'text' column (columns: {Columns()})");
        if (text is not DataField { IsArray: false } field || !IsString(field.ClrType))
            throw new HarvestException(
                $"--corpus '{file}': column 'text' is {Describe(text)}, not a string per document");
        return new Layout(false, TextColumn);
    }

    /// <summary>The data field holding a one-level list's elements (a LIST group, or a legacy repeated primitive), or
    /// null.</summary>
    static DataField? ElementOf(Field field) => field switch
    {
        ListField { Item: DataField item } when item.MaxRepetitionLevel == 1 => item,
        DataField { IsArray: true } repeated when repeated.MaxRepetitionLevel == 1 => repeated,
        _ => null,
    };

    static bool IsString(Type t) => t == typeof(string) || t == typeof(ReadOnlyMemory<char>);

    static string Describe(Field field) => field switch
    {
        ListField list => $"a list of {Describe(list.Item)}",
        DataField { IsArray: true } data => $"a repeated {data.ClrType.Name}",
        DataField data => $"a single {(IsString(data.ClrType) ? "string" : data.ClrType.Name)} per row",
        _ => $"a {field.SchemaType.ToString().ToLowerInvariant()}",
    };

    /// <summary>The rows of <paramref name="column"/>, each of exactly <paramref name="context"/> ids; one row group is
    /// held at a time.</summary>
    public static IEnumerable<long[]> TokenRows(string file, string column, int context)
    {
        using var reader = Open(file);
        var element = ElementOf(reader.Schema.Fields.First(f => f.Name == column))!;
        long row = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            var rows = GroupRows(reader, g, element, file, column, row);
            foreach (var ids in rows)
            {
                if (ids.Length != context)
                    throw new HarvestException($"--corpus '{file}': row {row} of column '{column}' " +
                        $"holds {ids.Length} tokens but --context is {context}; pre-tokenized rows are taken as they " +
                        $"are");
                row++;
                yield return ids;
            }
        }
    }

    static List<long[]> GroupRows(SyncReader reader, int g, DataField element, string file, string column,
        long firstRow)
    {
        using var group = reader.OpenRowGroupReader(g);
        using var raw =
            Readable(file, g, () => group.ReadRawColumnDataBaseAsync(element).AsTask().GetAwaiter().GetResult());
        var rows = raw switch
        {
            RawColumnData<long> a => Lists(a, a.Values, element, file, column, firstRow),
            RawColumnData<int> a => Lists(a, a.Values, element, file, column, firstRow),
            RawColumnData<short> a => Lists(a, a.Values, element, file, column, firstRow),
            RawColumnData<sbyte> a => Lists(a, a.Values, element, file, column, firstRow),
            RawColumnData<uint> a => Lists(a, a.Values, element, file, column, firstRow),
            RawColumnData<ushort> a => Lists(a, a.Values, element, file, column, firstRow),
            RawColumnData<byte> a => Lists(a, a.Values, element, file, column, firstRow),
            _ => throw new HarvestException(
                $"--corpus '{file}': column '{column}' holds {element.ClrType.Name}, not integer token ids"),
        };
        if (rows.Count != group.RowCount)
            throw new HarvestException($"--corpus '{file}': row group {g} holds {group.RowCount} rows but its column " +
                $"'{column}' gives {rows.Count}: the file is damaged");
        return rows;
    }

    /// <summary>Runs a read of row group <paramref name="g"/>, turning Parquet.Net's failures (a damaged file) into a
    /// refusal naming the file and group.</summary>
    static T Readable<T>(string file, int g, Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (e is not HarvestException and not OutOfMemoryException)
        {
            throw new HarvestException($"--corpus '{file}': row group {g} cannot be read ({e.Message})");
        }
    }

    /// <summary>
    /// Rebuilds a row group's lists from Parquet's levels: repetition level 0 starts a row; an entry at the maximum
    /// definition level is the next value (values are dense); one level below it, with nullable elements, is a null
    /// id; lower still is an empty or null list.
    /// </summary>
    static List<long[]> Lists<T>(RawColumnData raw, Span<T> values, DataField element, string file, string column,
        long firstRow)
        where T : struct, IBinaryInteger<T>
    {
        var rep = raw.RepetitionLevels;
        var def = element.MaxDefinitionLevel > 0 ? raw.DefinitionLevels : default;
        int maxDef = element.MaxDefinitionLevel;
        var rows = new List<long[]>();
        var current = new List<long>();
        int next = 0;
        for (int i = 0; i < rep.Length; i++)
        {
            if (rep[i] == 0)
            {
                if (i > 0) rows.Add([.. current]);
                current.Clear();
            }
            int level = def.IsEmpty ? maxDef : def[i];
            if (level == maxDef) current.Add(long.CreateTruncating(values[next++]));
            else if (element.IsNullable && level == maxDef - 1)
                throw new HarvestException(
                    $"--corpus '{file}': row {firstRow + rows.Count} of column '{column}' holds a null token id");
        }
        if (rep.Length > 0) rows.Add([.. current]);
        return rows;
    }

    /// <summary>The documents of the <c>text</c> column, in row order; a null document is refused with its
    /// row.</summary>
    public static IEnumerable<string> Documents(string file)
    {
        using var reader = Open(file);
        var field = (DataField)reader.Schema.Fields.First(f => f.Name == TextColumn);
        long row = 0;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            string?[] documents;
            using (var group = reader.OpenRowGroupReader(g))
            {
                documents = new string?[checked((int)group.RowCount)];
                var memory = documents.AsMemory();
                Readable(file, g,
                    () => { group.ReadAsync(field, memory, null).AsTask().GetAwaiter().GetResult(); return 0; });
            }
            foreach (var doc in documents)
            {
                if (doc is null) throw new HarvestException($"--corpus '{file}': row {row} of column 'text' is null");
                row++;
                yield return doc;
            }
        }
    }

    /// <summary>A reader that is disposed synchronously (Parquet.Net's reader is only IAsyncDisposable).</summary>
    static SyncReader Open(string file)
    {
        try { return new(ParquetReader.CreateAsync(file).GetAwaiter().GetResult()); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new HarvestException($"--corpus '{file}': not a readable Parquet file ({e.Message})");
        }
    }

    sealed class SyncReader(ParquetReader reader) : IDisposable
    {
        public ParquetSchema Schema => reader.Schema;
        public int RowGroupCount => reader.RowGroupCount;
        public ParquetRowGroupReader OpenRowGroupReader(int index) => reader.OpenRowGroupReader(index);
        public void Dispose() => reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
