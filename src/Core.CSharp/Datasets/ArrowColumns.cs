using Apache.Arrow;
using Apache.Arrow.Ipc;
using Apache.Arrow.Types;

namespace Lens.Datasets;

/// <summary>Reading Arrow IPC stream files (the format <c>datasets</c> writes) and nested fixed-size list columns as
/// flat values.</summary>
public static class ArrowColumns
{
    /// <summary>The record batches of one Arrow stream file, read one at a time (dispose each).</summary>
    public static IEnumerable<RecordBatch> Batches(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        using var reader = new ArrowStreamReader(stream);
        RecordBatch? batch;
        while ((batch = ReadNext(reader, file)) is not null) yield return batch;
    }

    static RecordBatch? ReadNext(ArrowStreamReader reader, string file)
    {
        try { return reader.ReadNextRecordBatch(); }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or OverflowException
            or InvalidOperationException)
        {
            throw new HarvestException($"'{file}' is not a readable Arrow stream file ({e.Message})");
        }
    }

    public static Schema ReadSchema(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read);
        using var reader = new ArrowStreamReader(stream);
        try { return reader.Schema; }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or OverflowException
            or InvalidOperationException)
        {
            throw new HarvestException($"'{file}' is not a readable Arrow stream file ({e.Message})");
        }
    }

    /// <summary>The per-row shape of a column of nested fixed-size lists, and its innermost value type.</summary>
    public static (int[] Shape, IArrowType Value) RowShape(IArrowType type)
    {
        var shape = new List<int>();
        while (type is FixedSizeListType list) { shape.Add(list.ListSize); type = list.ValueDataType; }
        return (shape.ToArray(), type);
    }

    /// <summary>The innermost primitive values of a nested fixed-size list array, as raw bytes in row order.</summary>
    public static ReadOnlySpan<byte> FlatBytes(IArrowArray array)
    {
        var data = array.Data;
        long start = data.Offset, count = data.Length;
        while (data.DataType is FixedSizeListType list)
        {
            data = data.Children[0];
            start = start * list.ListSize + data.Offset;
            count *= list.ListSize;
        }
        if (data.DataType is not FixedWidthType width)
            throw new HarvestException(
                $"a column holds {data.DataType.Name} values; activations and token ids are fixed-width numbers");
        int size = width.BitWidth / 8;
        return data.Buffers[1].Span.Slice(checked((int)(start * size)), checked((int)(count * size)));
    }
}
