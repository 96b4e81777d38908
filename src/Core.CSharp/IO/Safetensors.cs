using Microsoft.Win32.SafeHandles;
using System.Text;
using System.Text.Unicode;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.IO;

/// <summary>A malformed safetensors file: the message says what is wrong and where.</summary>
public sealed class SafetensorsException(string message) : Exception(message);

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafetensorsEntry(string Name, string Dtype, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>
/// A safetensors file: the header is parsed and validated up front, and each tensor is read with
/// positional reads straight into its torch tensor's memory (or into an existing tensor with
/// <see cref="ReadInto"/>), so loading never holds the file's bytes twice: no staging buffer, and no
/// memory map whose touched pages would count as resident next to the tensors. Format: u64
/// little-endian header length, a JSON header of name → {dtype, shape, data_offsets}, then the data,
/// row-major, little-endian.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    internal static readonly Dictionary<string, (ScalarType Type, int Size)> Dtypes = new()
    {
        ["F64"] = (ScalarType.Float64, 8), ["F32"] = (ScalarType.Float32, 4), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };
    internal static readonly Dictionary<ScalarType, string> DtypeNames =
        Dtypes.ToDictionary(kv => kv.Value.Type, kv => kv.Key);

    readonly SafeFileHandle _handle;
    readonly long _dataStart;

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IEnumerable<string> Names => Entries.Keys;

    public static SafetensorsFile Open(string path) => new(path);

    SafetensorsFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        // Hub cache snapshots are symbolic links to blobs: measure the file they point to, not the link.
        var info = new FileInfo(path);
        long fileLength =
            (info.LinkTarget is null ? info : (FileInfo?)info.ResolveLinkTarget(returnFinalTarget: true) ?? info)
                .Length;
        if (fileLength < 8)
            throw new SafetensorsException(
                $"{path}: file is {fileLength} bytes, too short for the 8-byte header length");
        byte[] headerBytes;
        using (var fs = File.OpenRead(path))
        {
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            ulong headerLength = BitConverter.ToUInt64(len);
            if (headerLength > (ulong)(fileLength - 8) || headerLength > 100_000_000)
                throw new SafetensorsException(
                    $"{path}: header length {headerLength} exceeds the file ({fileLength} bytes)");
            headerBytes = new byte[headerLength];
            fs.ReadExactly(headerBytes);
        }
        _dataStart = 8 + headerBytes.Length;
        (Entries, Metadata) = ParseHeader(path, headerBytes, fileLength - _dataStart);
        _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
    }

    static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header,
        long dataLength)
    {
        if (!Utf8.IsValid(header)) throw new SafetensorsException($"{path}: header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new SafetensorsException($"{path}: header is not valid JSON ({e.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new SafetensorsException($"{path}: header is not a JSON object");
        var entries = new Dictionary<string, SafetensorsEntry>();
        var metadata = new Dictionary<string, string>();
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                if (prop.Value.ValueKind != JsonValueKind.Object)
                    throw new SafetensorsException($"{path}: __metadata__ is not a JSON object");
                foreach (var m in prop.Value.EnumerateObject()) metadata[m.Name] = m.Value.ToString();
                continue;
            }
            var v = prop.Value;
            if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("dtype", out var dt)
                || !v.TryGetProperty("shape", out var sh) || !v.TryGetProperty("data_offsets", out var off))
                throw new SafetensorsException($"{path}: tensor '{prop.Name}' lacks dtype, shape or data_offsets");
            var dtype = dt.ValueKind == JsonValueKind.String ? dt.GetString() ?? "" : dt.GetRawText();
            if (!Dtypes.TryGetValue(dtype, out var info))
                throw new SafetensorsException($"{path}: tensor '{prop.Name}' has unknown dtype '{dtype}' " +
                    $"(known: {string.Join(", ", Dtypes.Keys)})");
            var shape = Integers(path, prop.Name, "shape", sh);
            if (shape.Any(d => d < 0))
                throw new SafetensorsException($"{path}: tensor '{prop.Name}' has a negative dimension");
            var offsets = Integers(path, prop.Name, "data_offsets", off);
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0])
                throw new SafetensorsException(
                    $"{path}: tensor '{prop.Name}' has invalid data_offsets [{string.Join(", ", offsets)}]");
            if (offsets[1] > dataLength)
                throw new SafetensorsException($"{path}: tensor '{prop.Name}' ends at byte {offsets[1]} of the data " +
                    $"but the file holds only {dataLength} data bytes (truncated?)");
            long expected;
            try { expected = checked(shape.Aggregate(1L, (a, d) => a * d) * info.Size); }
            catch (OverflowException)
            {
                throw new SafetensorsException($"{path}: tensor '{prop.Name}' ({dtype} [{string.Join(", ", shape)}]) " +
                    $"has more bytes than a file can hold (its size overflows 64 bits)");
            }
            if (offsets[1] - offsets[0] != expected)
                throw new SafetensorsException($"{path}: tensor '{prop.Name}' ({dtype} [{string.Join(", ", shape)}]) " +
                    $"needs {expected} bytes but data_offsets span {offsets[1] - offsets[0]}");
            entries[prop.Name] = new SafetensorsEntry(prop.Name, dtype, shape, offsets[0], offsets[1]);
        }
        var sorted = entries.Values.Where(e => e.ByteLength > 0).OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw new SafetensorsException(
                    $"{path}: tensors '{sorted[i - 1].Name}' and '{sorted[i].Name}' overlap in the data");
        return (entries, metadata);
    }

    /// <summary>A header field that must be a list of whole numbers (shape, data_offsets).</summary>
    static long[] Integers(string path, string tensor, string field, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
            throw new SafetensorsException($"{path}: tensor '{tensor}' has a {field} that is not a list");
        var integers = new List<long>();
        foreach (var e in value.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var n))
                throw new SafetensorsException(
                    $"{path}: tensor '{tensor}' has {field} element {e.GetRawText()}, not a whole number");
            integers.Add(n);
        }
        return [.. integers];
    }

    public bool Contains(string name) => Entries.ContainsKey(name);

    /// <summary>Reads one tensor into a new tensor, optionally converting dtype and moving it.</summary>
    public Tensor Load(string name, ScalarType? dtype = null, Device? device = null)
    {
        var e = Entry(name);
        var (type, _) = Dtypes[e.Dtype];
        var t = empty(e.Shape, dtype: type);
        try { if (e.ByteLength > 0) ReadBytes(t, e); }
        catch { t.Dispose(); throw; }
        if ((dtype is null || dtype == type) && (device is null || device.type == DeviceType.CPU)) return t;
        using (t) return t.to(dtype ?? type, device ?? CPU);
    }

    /// <summary>
    /// Reads one tensor into an existing tensor of the same shape: straight into its memory when it
    /// is a contiguous CPU tensor of the file's dtype, else through a temporary (converted and copied).
    /// </summary>
    public void ReadInto(string name, Tensor destination)
    {
        var e = Entry(name);
        if (!e.Shape.SequenceEqual(destination.shape))
            throw new SafetensorsException($"{Path}: tensor '{name}' has shape [{string.Join(", ", e.Shape)}] but " +
                $"the destination has [{string.Join(", ", destination.shape)}]");
        if (destination.device_type == DeviceType.CPU && destination.dtype == Dtypes[e.Dtype].Type
            && destination.is_contiguous())
        {
            if (e.ByteLength > 0) ReadBytes(destination, e);
            return;
        }
        using var _ = no_grad();
        using var t = Load(name, destination.dtype, destination.device);
        destination.copy_(t);
    }

    SafetensorsEntry Entry(string name) =>
        Entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    void ReadBytes(Tensor t, SafetensorsEntry e)
    {
        var dst = t.bytes;
        long offset = 0;
        while (offset < e.ByteLength)
        {
            int chunk = (int)Math.Min(e.ByteLength - offset, 1 << 30);
            int read = RandomAccess.Read(_handle, dst.Slice((int)offset, chunk), _dataStart + e.Begin + offset);
            if (read <= 0) throw new SafetensorsException($"{Path}: file ended inside tensor '{e.Name}' (truncated?)");
            offset += read;
        }
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>Reads every tensor of a file into a dictionary the caller owns.</summary>
    public static Dictionary<string, Tensor> LoadAll(string path, Device? device = null)
    {
        using var f = Open(path);
        return f.Names.ToDictionary(n => n, n => f.Load(n, device: device));
    }

    /// <summary>Writes tensors (data sorted by name as the reference writer does) atomically.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var layout = SafetensorsLayout.Of(list.Select(kv => (kv.Key, kv.Value.dtype, kv.Value.shape)), metadata);
        var byName = list.ToDictionary(kv => kv.Key, kv => kv.Value);
        AtomicFile.Write(path, fs =>
        {
            var writer = new SafetensorsWriter(fs, layout);
            foreach (var e in layout.Entries) writer.Append(e.Name, byName[e.Name]);
            writer.Finish();
        });
    }
}
