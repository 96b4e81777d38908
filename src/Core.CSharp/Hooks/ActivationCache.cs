using System.Collections;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Activations recorded by <see cref="HookedTransformer.RunWithCache(Tensor, Func{string, bool}?, bool)"/>,
/// keyed by full hook name, indexable by TransformerLens shorthand (<c>cache["pattern", 0]</c>,
/// <c>cache["scale", 0, "ln1"]</c>, negative layers count from the end). The cache owns its tensors:
/// disposing it frees them; a tensor taken out of it is valid until then.
/// </summary>
public sealed partial class ActivationCache : IReadOnlyDictionary<string, Tensor>, IDisposable
{
    readonly Dictionary<string, Tensor> _store;
    readonly List<string> _order;

    public ActivationCache(HookedTransformer model, IEnumerable<KeyValuePair<string, Tensor>> activations,
        bool hasBatchDim = true)
    {
        Model = model;
        _store = new Dictionary<string, Tensor>();
        _order = [];
        foreach (var (k, v) in activations) { _store[k] = v; _order.Add(k); }
        HasBatchDim = hasBatchDim;
    }

    public HookedTransformer Model { get; }
    public bool HasBatchDim { get; private set; }

    public Tensor this[string key] => _store.TryGetValue(key, out var t) ? t
        : _store.TryGetValue(ActName.Get(key), out t) ? t
        : throw new KeyNotFoundException(Missing(ActName.Get(key)));

    public Tensor this[string name, int layer] => Get(name, layer, null);
    public Tensor this[string name, int layer, string layerType] => Get(name, layer, layerType);

    Tensor Get(string name, int layer, string? layerType)
    {
        if (layer < 0) layer += Model.Config.NLayers;
        // A gradient (cache["z_grad", 0]) is named after its activation.
        var full = name.EndsWith("_grad", StringComparison.Ordinal)
            ? ActName.Get(name[..^5], layer, layerType) + "_grad"
            : ActName.Get(name, layer, layerType);
        return _store.TryGetValue(full, out var t) ? t : throw new KeyNotFoundException(Missing(full));
    }

    string Missing(string full)
    {
        var near = Suggestions.Nearest(full, _order, 3);
        return $"no activation '{full}' in the cache"
            + (near.Count > 0 ? $"; did you mean {string.Join(", ", near.Select(n => $"'{n}'"))}?" : "");
    }

    public IEnumerable<string> Keys => _order;
    public IEnumerable<Tensor> Values => _order.Select(k => _store[k]);
    public int Count => _order.Count;
    public bool ContainsKey(string key) => _store.ContainsKey(key) || _store.ContainsKey(ActName.Get(key));
    public bool TryGetValue(string key, out Tensor value)
    {
        if (_store.TryGetValue(key, out value!)) return true;
        return _store.TryGetValue(ActName.Get(key), out value!);
    }
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() =>
        _order.Select(k => new KeyValuePair<string, Tensor>(k, _store[k])).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Moves every activation to a device, in place.</summary>
    public ActivationCache To(Device device)
    {
        foreach (var k in _order)
        {
            var old = _store[k];
            if (old.device == device) continue;
            _store[k] = old.to(device).DetachFromDisposeScope();
            old.Dispose();
        }
        return this;
    }

    /// <summary>Drops a batch dimension of size 1 from every activation (TransformerLens's remove_batch_dim).</summary>
    public ActivationCache RemoveBatchDim()
    {
        if (!HasBatchDim) return this;
        foreach (var k in _order)
        {
            var old = _store[k];
            if (old.shape[0] != 1)
                throw new InvalidOperationException(
                    $"cannot remove the batch dimension: '{k}' has batch size {old.shape[0]}");
            _store[k] = old.squeeze(0).DetachFromDisposeScope();
            old.Dispose();
        }
        HasBatchDim = false;
        return this;
    }

    /// <summary>Total bytes held by the cached tensors.</summary>
    public long Bytes => Values.Sum(t => t.numel() * t.ElementSize);

    public void Dispose()
    {
        foreach (var t in _store.Values) t.Dispose();
        _store.Clear();
        _order.Clear();
    }

    public override string ToString() => $"ActivationCache with keys [{string.Join(", ", _order)}]";
}
