using System.Text.Json;
using Lens.IO;
using static TorchSharp.torch;

namespace Lens.Pretrained;

/// <summary>
/// The weights of a hub-layout checkpoint folder: <c>model.safetensors</c>, or the shards listed in
/// <c>model.safetensors.index.json</c>, else (when a repository ships only pickled weights)
/// <c>pytorch_model.bin</c> or the shards listed in <c>pytorch_model.bin.index.json</c>, read by
/// <see cref="PickledStateDict"/>; safetensors is preferred when both exist. Files are memory-mapped and each tensor is
/// copied out only when asked for, so converting never holds the checkpoint in memory twice. Names are HF's; a
/// checkpoint saved from the bare base model (no <c>transformer.</c> / <c>model.</c> prefix, as the
/// official gpt2 files are) is found under the prefixed names too.
/// </summary>
public sealed class CheckpointWeights : IDisposable
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";
    public const string PickledFile = "pytorch_model.bin";
    public const string PickledIndexFile = "pytorch_model.bin.index.json";

    readonly Dictionary<string, string> _fileOf;           // tensor name → shard path
    readonly Dictionary<string, SafetensorsFile> _open = [];
    readonly Dictionary<string, PickledStateDict> _pickled = [];

    public string Folder { get; }

    /// <summary>The base-model prefix (e.g. <c>transformer.</c>) tried when a name is not found as given.</summary>
    public string? BasePrefix { get; set; }

    CheckpointWeights(string folder, Dictionary<string, string> fileOf) { Folder = folder; _fileOf = fileOf; }

    public static bool Exist(string folder) =>
        new[] { SingleFile, IndexFile, PickledFile, PickledIndexFile }.Any(f => File.Exists(Path.Combine(folder, f)));

    public static CheckpointWeights Open(string folder)
    {
        var single = Path.Combine(folder, SingleFile);
        var index = Path.Combine(folder, IndexFile);
        if (File.Exists(single))
        {
            using var f = SafetensorsFile.Open(single);
            return new CheckpointWeights(folder, f.Names.ToDictionary(n => n, _ => single));
        }
        if (File.Exists(index)) return new CheckpointWeights(folder, ReadIndex(index, folder));
        var pickled = Path.Combine(folder, PickledFile);
        if (File.Exists(pickled))
        {
            using var f = PickledStateDict.Open(pickled);
            return new CheckpointWeights(folder, f.Names.ToDictionary(n => n, _ => pickled));
        }
        var pickledIndex = Path.Combine(folder, PickledIndexFile);
        if (File.Exists(pickledIndex)) return new CheckpointWeights(folder, ReadIndex(pickledIndex, folder));
        var others = Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder).Select(Path.GetFileName)
                .Where(n => n!.EndsWith(".bin", StringComparison.Ordinal) || n.EndsWith(".pt", StringComparison.Ordinal)
                || n.EndsWith(".pth", StringComparison.Ordinal) || n.EndsWith(".h5", StringComparison.Ordinal)
                || n.EndsWith(".msgpack", StringComparison.Ordinal)).ToList()
            : [];
        throw new CheckpointException($"{folder}: no {SingleFile}, {IndexFile}, {PickledFile} or {PickledIndexFile}" +
            (others.Count > 0 ? $" (found {string.Join(", ", others)}, which Lens does not read)" : ""));
    }

    static Dictionary<string, string> ReadIndex(string index, string folder)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(index)); }
        catch (JsonException e) { throw new CheckpointException($"{index}: not valid JSON ({e.Message})"); }
        using var _ = doc;
        if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new CheckpointException($"{index}: no 'weight_map' object");
        var fileOf = new Dictionary<string, string>();
        foreach (var e in map.EnumerateObject())
        {
            var shard = e.Value.GetString();
            if (string.IsNullOrEmpty(shard) || shard.Contains("..") || Path.IsPathRooted(shard))
                throw new CheckpointException($"{index}: tensor '{e.Name}' has an invalid shard name '{shard}'");
            var path = Path.Combine(folder, shard);
            if (!LinkedFiles.IsPresent(path))
                throw new CheckpointException($"{index}: shard '{shard}' (holding '{e.Name}') is missing");
            fileOf[e.Name] = path;
        }
        return fileOf;
    }

    public IReadOnlyCollection<string> Names => _fileOf.Keys;

    /// <summary>The stored name for a name as given, with or without the base prefix; null if absent.</summary>
    public string? Resolve(string name)
    {
        if (_fileOf.ContainsKey(name)) return name;
        if (BasePrefix is string p)
        {
            if (name.StartsWith(p, StringComparison.Ordinal) && _fileOf.ContainsKey(name[p.Length..]))
                return name[p.Length..];
            if (!name.StartsWith(p, StringComparison.Ordinal) && _fileOf.ContainsKey(p + name)) return p + name;
        }
        return null;
    }

    public bool Contains(string name) => Resolve(name) is not null;

    /// <summary>Dtype as stored (F32, BF16, ...) of a tensor, for reports.</summary>
    public string StoredDtype(string name)
    {
        var stored = Resolve(name) ?? throw NotFound(name);
        return IsPickled(stored) ? Pickled(stored).StoredDtype(stored) : Shard(stored).Entries[stored].Dtype;
    }

    bool IsPickled(string stored) => _fileOf[stored].EndsWith(".bin", StringComparison.Ordinal);

    /// <summary>Copies one tensor out of its (memory-mapped) file, converted to dtype.</summary>
    public Tensor Load(string name, ScalarType dtype)
    {
        var stored = Resolve(name) ?? throw NotFound(name);
        return IsPickled(stored) ? Pickled(stored).Load(stored, dtype) : Shard(stored).Load(stored, dtype);
    }

    PickledStateDict Pickled(string stored)
    {
        var path = _fileOf[stored];
        if (!_pickled.TryGetValue(path, out var f)) _pickled[path] = f = PickledStateDict.Open(path);
        if (!f.Contains(stored))
            throw new CheckpointException(
                $"{path}: the index places tensor '{stored}' in this shard, but it is not there");
        return f;
    }

    SafetensorsFile Shard(string stored)
    {
        var path = _fileOf[stored];
        if (!_open.TryGetValue(path, out var f)) _open[path] = f = SafetensorsFile.Open(path);
        return f;
    }

    CheckpointException NotFound(string name) =>
        new($"{Folder}: the checkpoint has no tensor '{name}' (it has {_fileOf.Count} tensors, " +
            $"e.g. {string.Join(", ", _fileOf.Keys.Order().Take(4))})");

    public void Dispose()
    {
        foreach (var f in _open.Values) f.Dispose();
        _open.Clear();
        foreach (var f in _pickled.Values) f.Dispose();
        _pickled.Clear();
    }
}
