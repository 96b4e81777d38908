using Apache.Arrow;
using Apache.Arrow.Ipc;
using Lens.IO;

namespace Lens.Datasets;

/// <summary>
/// Writes one <c>data-K-of-M.arrow</c> file of a known number of rows: under a temporary name in the same folder,
/// renamed when its last row is written, so the name only ever holds a complete file. Rows are grouped into
/// record batches of <see cref="RowsPerRecordBatch"/> rows from the file's first row, so the bytes depend only on
/// the rows, not on how they arrived.
/// </summary>
public sealed class ArrowDataFileWriter : IDisposable
{
    readonly IReadOnlyList<DatasetColumn> _columns;
    readonly Schema _schema;
    readonly string _path, _temporary;
    readonly FileStream _stream;
    readonly ArrowStreamWriter _writer;
    readonly byte[][] _buffers;
    readonly int _batchRows;
    readonly long _rows;
    long _written;
    int _buffered;
    bool _closed;

    /// <summary>Rows per record batch: up to datasets' 1000, fewer when rows are large (about 8 MiB per batch at
    /// most).</summary>
    public static int RowsPerRecordBatch(IReadOnlyList<DatasetColumn> columns) =>
        (int)Math.Clamp((8L << 20) / Math.Max(1, columns.Sum(c => c.BytesPerRow)), 1, 1000);

    public static Schema Schema(IReadOnlyList<DatasetColumn> columns) =>
        new(columns.Select(c => c.Field),
            [new KeyValuePair<string, string>("huggingface", DatasetLayout.SchemaMetadata(columns))]);

    public ArrowDataFileWriter(string path, IReadOnlyList<DatasetColumn> columns, long rows)
    {
        _path = path;
        _columns = columns;
        _rows = rows;
        _schema = Schema(columns);
        _batchRows = RowsPerRecordBatch(columns);
        _buffers = columns.Select(c => new byte[checked((int)(c.BytesPerRow * _batchRows))]).ToArray();
        _temporary = AtomicFile.TemporaryPath(path);
        _stream = new FileStream(_temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        _writer = new ArrowStreamWriter(_stream, _schema, leaveOpen: true);
        _writer.WriteStart();
        if (rows == 0) Finish();
    }

    public bool Done => _closed;

    /// <summary>Appends one row: for each column (in order), its <see cref="DatasetColumn.BytesPerRow"/>
    /// bytes.</summary>
    public void Append(IReadOnlyList<ReadOnlyMemory<byte>> row)
    {
        if (_closed) throw new InvalidOperationException($"'{_path}' already holds its {_rows} rows");
        for (int c = 0; c < _columns.Count; c++)
            row[c].Span.CopyTo(_buffers[c].AsSpan(checked((int)(_buffered * _columns[c].BytesPerRow))));
        _buffered++;
        _written++;
        if (_buffered == _batchRows || _written == _rows) Flush();
        if (_written == _rows) Finish();
    }

    void Flush()
    {
        if (_buffered == 0) return;
        var arrays =
            _columns.Select((c, i) =>
                c.Array(_buffers[i].AsMemory(0, checked((int)(_buffered * c.BytesPerRow))), _buffered)).ToList();
        using var batch = new RecordBatch(_schema, arrays, _buffered);
        _writer.WriteRecordBatch(batch);
        _buffered = 0;
    }

    void Finish()
    {
        _writer.WriteEnd();
        _writer.Dispose();
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        File.Move(_temporary, _path, overwrite: true);
        _closed = true;
    }

    /// <summary>An unfinished file is abandoned: its temporary file is removed and the name is never written.</summary>
    public void Dispose()
    {
        if (_closed) return;
        _closed = true;
        _writer.Dispose();
        _stream.Dispose();
        if (File.Exists(_temporary)) File.Delete(_temporary);
    }
}
