using System.Collections;
using System.IO.Compression;
using System.Numerics;
using Razorvine.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.IO;

/// <summary>
/// A state dict written by PyTorch's <c>torch.save</c> (<c>pytorch_model.bin</c>): the zip format every
/// PyTorch since 1.6 writes, or the legacy format before it. The pickle is read through Razorvine.Pickle
/// with tensors kept as descriptions, so nothing in the file is executed; it must be a dict of names to
/// tensors (anything else is refused, naming what was found), and each tensor's data is read from its
/// storage only when asked for.
/// </summary>
public sealed class PickledStateDict : IDisposable
{
    // torch/serialization.py's LEGACY MAGIC_NUMBER and PROTOCOL_VERSION.
    static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356", CultureInfo.InvariantCulture);
    const int LegacyProtocol = 1001;

    static readonly Dictionary<string, (ScalarType Type, int Size, string Dtype)> StorageTypes = new()
    {
        ["DoubleStorage"] = (ScalarType.Float64, 8, "F64"), ["FloatStorage"] = (ScalarType.Float32, 4, "F32"),
        ["HalfStorage"] = (ScalarType.Float16, 2, "F16"), ["BFloat16Storage"] = (ScalarType.BFloat16, 2, "BF16"),
        ["LongStorage"] = (ScalarType.Int64, 8, "I64"), ["IntStorage"] = (ScalarType.Int32, 4, "I32"),
        ["ShortStorage"] = (ScalarType.Int16, 2, "I16"), ["CharStorage"] = (ScalarType.Int8, 1, "I8"),
        ["ByteStorage"] = (ScalarType.Byte, 1, "U8"), ["BoolStorage"] = (ScalarType.Bool, 1, "BOOL"),
    };

    readonly Dictionary<string, PickledTensorView> _tensors;
    readonly Func<PickledStorage, byte[]> _readStorage;
    readonly IDisposable _source;

    public string Path { get; }
    public IEnumerable<string> Names => _tensors.Keys;
    public bool Contains(string name) => _tensors.ContainsKey(name);

    PickledStateDict(string path, Dictionary<string, PickledTensorView> tensors,
        Func<PickledStorage, byte[]> readStorage, IDisposable source)
    {
        Path = path;
        _tensors = tensors;
        _readStorage = readStorage;
        _source = source;
    }

    /// <summary>Whether a file starts like a zip archive (the format of torch.save since PyTorch 1.6).</summary>
    static bool IsZip(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return f.Read(head) == 4 && head[0] == 0x50 && head[1] == 0x4B && head[2] == 0x03 && head[3] == 0x04;
    }

    public static PickledStateDict Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"pickled checkpoint not found: {path}", path);
        try
        {
            return IsZip(path) ? OpenZip(path) : OpenLegacy(path);
        }
        catch (Exception e) when (e is PickleException or InvalidDataException or IOException or InvalidCastException)
        {
            throw new CheckpointException($"{path}: not a readable torch.save file ({e.Message})");
        }
    }

    static PickledStateDict OpenZip(string path)
    {
        var zip = ZipFile.OpenRead(path);
        try
        {
            var pkl = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal)).ToList();
            if (pkl.Count != 1)
                throw new CheckpointException($"{path}: a zip file, but not one torch.save wrote (expected one " +
                    $"'<name>/data.pkl', found {pkl.Count})");
            string prefix = pkl[0].FullName[..^"data.pkl".Length];
            if (zip.GetEntry(prefix + "byteorder") is { } order)
            {
                using var r = new StreamReader(order.Open());
                string byteOrder = r.ReadToEnd().Trim();
                if (byteOrder != "little")
                    throw new CheckpointException(
                        $"{path}: saved with byte order '{byteOrder}'; only little-endian files are read.");
            }
            var storages = new Dictionary<string, PickledStorage>();
            object root;
            using (var s = pkl[0].Open())
                root = new TorchUnpickler(path, st => Intern(path, storages, st)).load(s);
            var tensors = CheckStateDict(path, root);

            byte[] Read(PickledStorage st)
            {
                var entry = zip.GetEntry(prefix + "data/" + st.Key)
                    ?? throw new CheckpointException(
                    $"{path}: storage '{st.Key}' has no '{prefix}data/{st.Key}' entry.");
                long bytes = st.Numel * StorageTypes[st.StorageType].Size;
                if (entry.Length != bytes)
                    throw new CheckpointException($"{path}: storage '{st.Key}' ({st.Numel} × {st.StorageType}) " +
                        $"needs {bytes} bytes but its entry holds {entry.Length}.");
                var data = new byte[bytes];
                using var es = entry.Open();
                es.ReadExactly(data);
                return data;
            }
            return new PickledStateDict(path, tensors, Read, zip);
        }
        catch { zip.Dispose(); throw; }
    }

    static PickledStateDict OpenLegacy(string path)
    {
        var file = File.OpenRead(path);
        try
        {
            using var unpickler = new Unpickler();
            if (unpickler.load(file) is not BigInteger magic || magic != LegacyMagic)
                throw new CheckpointException($"{path}: neither a zip archive nor a legacy torch.save file (no torch " +
                    $"magic number); is it a PyTorch checkpoint?");
            if (TorchUnpickler.ToLong(unpickler.load(file), path, "the legacy protocol version") != LegacyProtocol)
                throw new CheckpointException($"{path}: legacy torch.save protocol version is not {LegacyProtocol}.");
            if (unpickler.load(file) is Hashtable sysInfo && sysInfo["little_endian"] is false)
                throw new CheckpointException(
                    $"{path}: saved on a big-endian machine; only little-endian files are read.");

            var storages = new Dictionary<string, PickledStorage>();
            var root = new TorchUnpickler(path, st => Intern(path, storages, st)).load(file);
            var tensors = CheckStateDict(path, root);
            if (unpickler.load(file) is not ArrayList keys)
                throw new CheckpointException($"{path}: the legacy storage key list is missing.");

            // Then each storage in key order: its element count (int64, little-endian) and its bytes.
            var offsets = new Dictionary<string, long>();
            Span<byte> count = stackalloc byte[8];
            foreach (var k in keys)
            {
                string key = k?.ToString() ?? "";
                if (!storages.TryGetValue(key, out var st))
                    throw new CheckpointException($"{path}: the file stores storage '{key}', which no tensor uses.");
                file.ReadExactly(count);
                long numel = BitConverter.ToInt64(count);
                if (numel != st.Numel)
                    throw new CheckpointException(
                        $"{path}: storage '{key}' holds {numel} elements but the pickle says {st.Numel}.");
                offsets[key] = file.Position;
                file.Seek(numel * StorageTypes[st.StorageType].Size, SeekOrigin.Current);
            }
            if (file.Position > file.Length)
                throw new CheckpointException($"{path}: the file ends inside its storages (truncated?).");
            foreach (var st in storages.Values)
                if (!offsets.ContainsKey(st.Key))
                    throw new CheckpointException($"{path}: storage '{st.Key}' is used by a tensor but not stored.");

            byte[] Read(PickledStorage st)
            {
                var data = new byte[st.Numel * StorageTypes[st.StorageType].Size];
                RandomAccess.Read(file.SafeFileHandle, data, offsets[st.Key]);
                return data;
            }
            return new PickledStateDict(path, tensors, Read, file);
        }
        catch { file.Dispose(); throw; }
    }

    static PickledStorage Intern(string path, Dictionary<string, PickledStorage> storages, PickledStorage st)
    {
        if (!StorageTypes.ContainsKey(st.StorageType))
            throw new CheckpointException($"{path}: storage '{st.Key}' has type torch.{st.StorageType}, which Lens " +
                $"does not read (known: {string.Join(", ", StorageTypes.Keys)}).");
        if (st.Numel < 0) throw new CheckpointException($"{path}: storage '{st.Key}' has a negative element count.");
        if (storages.TryGetValue(st.Key, out var seen))
            return seen == st
                ? seen
                : throw new CheckpointException($"{path}: storage '{st.Key}' is described twice, differently.");
        storages[st.Key] = st;
        return st;
    }

    /// <summary>A plain state dict: a dict (or OrderedDict) of string names to tensors whose views fit their
    /// storages.</summary>
    static Dictionary<string, PickledTensorView> CheckStateDict(string path, object root)
    {
        if (root is not Hashtable dict)
            throw new CheckpointException($"{path}: holds {TorchUnpickler.Describe(root)}, not a state dict (a dict " +
                $"of names to tensors); save model.state_dict() rather than the model.");
        if (root is PickledOrderedDict od)
            foreach (DictionaryEntry a in od.Attributes)
                if (a.Key as string != "_metadata")
                    throw new CheckpointException(
                        $"{path}: the state dict carries an attribute '{a.Key}' that a state dict does not have.");
        var tensors = new Dictionary<string, PickledTensorView>();
        foreach (DictionaryEntry e in dict)
        {
            if (e.Key is not string name)
                throw new CheckpointException(
                    $"{path}: a key of the dict is {TorchUnpickler.Describe(e.Key)}, not a tensor name.");
            if (e.Value is not PickledTensorView view)
                throw new CheckpointException($"{path}: '{name}' holds {TorchUnpickler.Describe(e.Value)}, not a " +
                    $"tensor; the file is not a plain state dict (a training checkpoint? load its model state dict " +
                    $"and save that).");
            if (view.Shape.Any(d => d < 0) || view.Stride.Any(s => s < 0) || view.Offset < 0)
                throw new CheckpointException($"{path}: tensor '{name}' has a negative size, stride or offset.");
            long last = view.Offset + view.Shape.Zip(view.Stride, (d, s) => (d - 1) * s).Sum();
            if (view.Shape.All(d => d > 0) && last >= view.Storage.Numel)
                throw new CheckpointException($"{path}: tensor '{name}' [{string.Join(", ", view.Shape)}] reaches " +
                    $"element {last} of a storage of {view.Storage.Numel}.");
            tensors[name] = view;
        }
        return tensors;
    }

    PickledTensorView Entry(string name) =>
        _tensors.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>The dtype as safetensors names it (F32, BF16, ...).</summary>
    public string StoredDtype(string name) => StorageTypes[Entry(name).Storage.StorageType].Dtype;

    public long[] Shape(string name) => (long[])Entry(name).Shape.Clone();

    /// <summary>Reads one tensor (a contiguous copy of its view), converted to dtype when given.</summary>
    public Tensor Load(string name, ScalarType? dtype = null)
    {
        var view = Entry(name);
        var (type, size, _) = StorageTypes[view.Storage.StorageType];
        if (view.Storage.Numel * size > Array.MaxLength)
            throw new CheckpointException($"{Path}: tensor '{name}' lives in a storage " +
                $"of {view.Storage.Numel * size} bytes, more than Lens reads from a pickled file; convert the " +
                $"checkpoint to safetensors.");
        using var scope = NewDisposeScope();
        var storage = empty(view.Storage.Numel, dtype: type);
        if (view.Storage.Numel > 0) _readStorage(view.Storage).AsSpan().CopyTo(storage.bytes);
        var t = storage.as_strided(view.Shape, view.Stride, view.Offset).contiguous();
        if (dtype is { } d && d != type) t = t.to(d);
        // A view of part of a storage is copied, so that the rest of the storage is not kept alive.
        if (t.numel() != view.Storage.Numel) t = t.clone();
        return t.MoveToOuterDisposeScope();
    }

    public void Dispose() => _source.Dispose();
}
