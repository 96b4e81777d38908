using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// A function run at a hook point: it receives the activation and the hook point, and returns a
/// replacement activation or null to keep it. The activation belongs to the forward pass: it is
/// valid during the call only; to keep it, clone it or call <c>DetachFromDisposeScope()</c>.
/// </summary>
public delegate Tensor? HookFunction(Tensor activation, HookPoint hook);

/// <summary>
/// A named place in the forward pass (TransformerLens's HookPoint): the identity unless hooks are
/// attached. With no hooks it costs one list-count check.
/// </summary>
public sealed class HookPoint
{
    readonly List<HookFunction> _hooks = [];
    Func<Tensor, Tensor>? _replacement;

    public HookPoint(string name) { Name = name; Layer = ParseLayer(name); }

    /// <summary>Full TransformerLens name, e.g. <c>blocks.1.attn.hook_pattern</c>.</summary>
    public string Name { get; }

    /// <summary>The block index the hook point lives in, or null for the embedding and final hooks.</summary>
    public int? Layer { get; }

    /// <summary>Whether anything runs here: hooks, or a module spliced in (so fused paths still materialise the value).</summary>
    public bool HasHooks => _hooks.Count > 0 || _replacement is not null;

    public int HookCount => _hooks.Count;

    public Tensor Run(Tensor x)
    {
        if (_replacement is not null) x = _replacement(x);
        if (_hooks.Count == 0) return x;
        for (int i = 0; i < _hooks.Count; i++)
        {
            var replacement = _hooks[i](x, this);
            if (replacement is not null) x = replacement;
        }
        return x;
    }

    /// <summary>Attaches a forward hook; disposing the result removes it.</summary>
    public IDisposable Add(HookFunction fn)
    {
        _hooks.Add(fn);
        return new Removal(() => _hooks.Remove(fn));
    }

    public void Clear() => _hooks.Clear();

    /// <summary>Whether a module is spliced in here (<see cref="Splice"/>).</summary>
    public bool IsSpliced => _replacement is not null;

    /// <summary>
    /// Splices a module into this point (HookedSAETransformer's add_sae): its output replaces the
    /// activation before the hooks run, so the hooks here see the module's output. One at a time;
    /// disposing the result removes it.
    /// </summary>
    public IDisposable Splice(Func<Tensor, Tensor> module)
    {
        if (_replacement is not null) throw new InvalidOperationException($"{Name} already has a module spliced in; detach it first");
        _replacement = module;
        return new Removal(() => { if (_replacement == module) _replacement = null; });
    }

    public override string ToString() => $"HookPoint({Name})";

    static int? ParseLayer(string name)
    {
        if (!name.StartsWith("blocks.")) return null;
        var rest = name.AsSpan("blocks.".Length);
        int dot = rest.IndexOf('.');
        return dot > 0 && int.TryParse(rest[..dot], out var l) ? l : null;
    }

    sealed class Removal(Action remove) : IDisposable
    {
        Action? _remove = remove;
        public void Dispose() { _remove?.Invoke(); _remove = null; }
    }
}
