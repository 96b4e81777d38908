using System.Text.Json;
using static TorchSharp.torch;

namespace Lens.IO;

/// <summary>
/// Where every tensor's bytes go in a safetensors file, known before any data is: the header (u64 little-endian
/// length, then the JSON of each name's dtype, shape and data_offsets, padded with spaces to a multiple of 8 bytes),
/// then the data sorted by name as the reference writer does. <see cref="SafetensorsWriter"/> writes by it.
/// </summary>
public sealed class SafetensorsLayout
{
    SafetensorsLayout(byte[] header, IReadOnlyList<SafetensorsEntry> entries)
    {
        Header = header;
        Entries = entries;
        Named = entries.ToDictionary(e => e.Name);
    }

    /// <summary>The header's bytes, its length prefix included: the data starts right after them.</summary>
    public byte[] Header { get; }

    /// <summary>Each tensor's entry in data order (by name, ordinal); offsets are from the start of the data.</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }

    public IReadOnlyDictionary<string, SafetensorsEntry> Named { get; }

    public long DataStart => Header.Length;

    /// <summary>The whole file's length in bytes.</summary>
    public long Length => DataStart + (Entries.Count == 0 ? 0 : Entries[^1].End);

    /// <summary>The layout of tensors of these names, dtypes and shapes, with optional string metadata.</summary>
    public static SafetensorsLayout Of(IEnumerable<(string Name, ScalarType Dtype, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        var entries = new List<SafetensorsEntry>();
        long offset = 0;
        foreach (var (name, dtype, shape) in list)
        {
            if (!SafetensorsFile.DtypeNames.TryGetValue(dtype, out var dn))
                throw new SafetensorsException($"cannot write tensor '{name}' of dtype {dtype}");
            if (header.ContainsKey(name))
                throw new SafetensorsException($"cannot write tensor '{name}' twice in one file");
            long bytes;
            try { bytes = checked(shape.Aggregate(1L, (a, d) => a * d) * SafetensorsFile.Dtypes[dn].Size); }
            catch (OverflowException)
            {
                throw new SafetensorsException(
                    $"cannot write tensor '{name}' of shape [{string.Join(", ", shape)}]: its size overflows 64 bits");
            }
            header[name] = new { dtype = dn, shape, data_offsets = new[] { offset, offset + bytes } };
            entries.Add(new SafetensorsEntry(name, dn, shape, offset, offset + bytes));
            offset += bytes;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8;
        var bytesOut = new byte[8 + json.Length + pad];
        BitConverter.GetBytes((ulong)(json.Length + pad)).CopyTo(bytesOut, 0);
        json.CopyTo(bytesOut, 8);
        for (int i = 8 + json.Length; i < bytesOut.Length; i++) bytesOut[i] = (byte)' ';
        return new SafetensorsLayout(bytesOut, entries);
    }
}
