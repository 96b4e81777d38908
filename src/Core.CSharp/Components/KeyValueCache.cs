using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>
/// Keys and values of the positions already seen, one entry per layer, so generation computes only
/// the new position each step (TransformerLens's HookedTransformerKeyValueCache). Keys are kept
/// before rotary, as TransformerLens does, and rotated with their absolute positions each step.
/// </summary>
public sealed class KeyValueCache : IDisposable
{
    readonly KeyValueCacheEntry[] _entries;
    public KeyValueCache(int nLayers) =>
        _entries = Enumerable.Range(0, nLayers).Select(_ => new KeyValueCacheEntry()).ToArray();
    public KeyValueCacheEntry this[int layer] => _entries[layer];
    /// <summary>Positions cached so far.</summary>
    public long Length => _entries.Length == 0 ? 0 : _entries[0].Length;

    /// <summary>
    /// The attention mask of every position so far [batch, positions] (TransformerLens's
    /// append_attention_mask), once a forward with a mask has used this cache; null while none has.
    /// </summary>
    public Tensor? AttentionMask { get; private set; }

    /// <summary>Appends the new positions' mask (all real when null) and returns the whole mask, owned by the
    /// cache.</summary>
    internal Tensor AppendAttentionMask(Tensor? mask, long batch, long newPositions, Device device)
    {
        using var scope = NewDisposeScope();
        var past = AttentionMask ?? ones(batch, Length, ScalarType.Int64, device);
        var now = mask?.to(ScalarType.Int64) ?? ones(batch, newPositions, ScalarType.Int64, device);
        var all = cat([past, now], 1).DetachFromDisposeScope();
        AttentionMask?.Dispose();
        AttentionMask = all;
        return all;
    }

    public void Dispose() { foreach (var e in _entries) e.Dispose(); AttentionMask?.Dispose(); AttentionMask = null; }
}

public sealed class KeyValueCacheEntry : IDisposable
{
    Tensor? _keys, _values;
    public long Length => _keys?.shape[1] ?? 0;

    /// <summary>Appends new keys/values [batch, pos, kv_heads, d_head] and returns the full ones (owned by the
    /// cache).</summary>
    public (Tensor Keys, Tensor Values) Append(Tensor k, Tensor v)
    {
        var keys = _keys is null ? k.clone() : cat([_keys, k], 1);
        var values = _values is null ? v.clone() : cat([_values, v], 1);
        _keys?.Dispose(); _values?.Dispose();
        _keys = keys.DetachFromDisposeScope(); _values = values.DetachFromDisposeScope();
        return (_keys, _values);
    }

    public void Dispose() { _keys?.Dispose(); _values?.Dispose(); _keys = _values = null; }
}
