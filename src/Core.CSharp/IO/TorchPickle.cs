using System.Collections;
using System.Numerics;
using Razorvine.Pickle;
using Razorvine.Pickle.Objects;

namespace Lens.IO;

/// <summary>A storage as <c>torch.save</c> names it in a persistent id: its key, element type and element
/// count.</summary>
internal sealed record PickledStorage(string Key, string StorageType, long Numel);

/// <summary>
/// A tensor as <c>torch._utils._rebuild_tensor_v2</c> describes it: a view (offset, shape, stride in
/// elements) of a storage. No data is read while unpickling.
/// </summary>
internal sealed record PickledTensorView(PickledStorage Storage, long Offset, long[] Shape, long[] Stride);

/// <summary>
/// The pickle side of <c>torch.load</c>, through Razorvine.Pickle, restricted to what a state dict holds:
/// tensors are rebuilt only as <see cref="PickledTensorView"/> descriptions (no data, no code run), an
/// <c>OrderedDict</c> becomes a <see cref="PickledOrderedDict"/>, and every other class the pickle names
/// stays an inert <see cref="ClassDict"/>, which <see cref="PickledStateDict"/> then refuses by name.
/// </summary>
internal sealed class TorchUnpickler : Unpickler
{
    static TorchUnpickler()
    {
        // Razorvine keeps constructors in one process-wide table; these are stateless, so sharing is harmless.
        registerConstructor("torch._utils", "_rebuild_tensor", new RebuildTensor());
        registerConstructor("torch._utils", "_rebuild_tensor_v2", new RebuildTensor());
        registerConstructor("torch._utils", "_rebuild_parameter", new RebuildParameter());
        registerConstructor("collections", "OrderedDict", new OrderedDictConstructor());
    }

    readonly string _path;
    readonly Func<PickledStorage, PickledStorage> _storageSeen;

    /// <param name="path">The file, for messages.</param>
    /// <param name="storageSeen">Called with each storage the pickle names; returns the one to use (shared storages
    /// stay one object).</param>
    public TorchUnpickler(string path, Func<PickledStorage, PickledStorage> storageSeen)
    {
        _path = path;
        _storageSeen = storageSeen;
    }

    protected override object persistentLoad(object pid)
    {
        // ('storage', storage_type, key, location, numel) in the zip format; the legacy format adds view_metadata.
        if (pid is not object[] t || t.Length < 5 || t[0] as string != "storage")
            throw new CheckpointException($"{_path}: the pickle refers to an external object that is not a tensor " +
                $"storage ({Describe(pid)}); a plain state dict holds only tensors.");
        if (t.Length > 5 && t[5] is not null)
            throw new CheckpointException($"{_path}: storage '{t[2]}' is saved as a view of another storage (legacy " +
                $"view_metadata), which Lens does not read.");
        string storageType = t[1] is ClassDictConstructor c && c.module == "torch" ? c.name
            : throw new CheckpointException(
                $"{_path}: a storage has type {Describe(t[1])}, not a torch storage class.");
        string key = t[2]?.ToString() ?? throw new CheckpointException($"{_path}: a storage has no key.");
        return _storageSeen(new PickledStorage(key, storageType,
            ToLong(t[4], _path, $"the element count of storage '{key}'")));
    }

    internal static long ToLong(object? value, string path, string what) => value switch
    {
        int i => i,
        long l => l,
        BigInteger b when b >= long.MinValue && b <= long.MaxValue => (long)b,
        _ => throw new CheckpointException($"{path}: {what} is {Describe(value)}, not an integer."),
    };

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        ClassDict d => $"an object of class {d.ClassName}",
        ClassDictConstructor c => $"the class {c.module}.{c.name}",
        string s => $"the string \"{s}\"",
        _ => $"a {value.GetType().Name}",
    };

    /// <summary>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[,
    /// metadata]).</summary>
    sealed class RebuildTensor : IObjectConstructor
    {
        public object construct(object[] args)
        {
            if (args.Length < 4 || args[0] is not PickledStorage storage || args[2] is not object[] size
                || args[3] is not object[] stride)
                throw new PickleException("torch._utils._rebuild_tensor_v2 has arguments Lens does not recognise " +
                    "(expected storage, offset, size, stride).");
            if (size.Length != stride.Length)
                throw new PickleException(
                    $"a tensor of storage '{storage.Key}' has {size.Length} sizes but {stride.Length} strides.");
            return new PickledTensorView(storage, ToLong(args[1], storage.Key, "the storage offset"),
                size.Select(s => ToLong(s, storage.Key, "a size")).ToArray(),
                stride.Select(s => ToLong(s, storage.Key, "a stride")).ToArray());
        }
    }

    /// <summary>_rebuild_parameter(data, requires_grad, backward_hooks): an nn.Parameter is its data here.</summary>
    sealed class RebuildParameter : IObjectConstructor
    {
        public object construct(object[] args) =>
            args.Length >= 1 && args[0] is PickledTensorView view ? view
                : throw new PickleException("torch._utils._rebuild_parameter does not wrap a tensor.");
    }

    sealed class OrderedDictConstructor : IObjectConstructor
    {
        public object construct(object[] args) => args.Length == 0
            ? new PickledOrderedDict()
            : throw new PickleException(
                "collections.OrderedDict is built with arguments, which a state dict never is.");
    }
}

/// <summary>
/// <c>collections.OrderedDict</c> as a state dict pickles it: items set by SETITEMS, and instance
/// attributes (<c>_metadata</c>, the module versions) set by BUILD, which are kept apart from the items.
/// </summary>
internal sealed class PickledOrderedDict : Hashtable
{
    public Hashtable Attributes { get; } = new();

    public void __setstate__(Hashtable state)
    {
        foreach (DictionaryEntry e in state) Attributes[e.Key] = e.Value;
    }
}
