using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// A function run at a hook point: it receives the activation and the hook point, and returns a
/// replacement activation or null to keep it. The activation belongs to the forward pass: it is
/// valid during the call only; to keep it, clone it or call <c>DetachFromDisposeScope()</c>.
/// A backward hook has the same shape: it receives the gradient flowing into the activation
/// (d metric / d activation) and may return a replacement gradient of the same shape.
/// </summary>
public delegate Tensor? HookFunction(Tensor activation, HookPoint hook);

/// <summary>Which pass a hook runs in (TransformerLens's <c>dir="fwd"</c> / <c>dir="bwd"</c>).</summary>
public enum HookDirection { Forward, Backward }

/// <summary>
/// A named place in the forward pass (TransformerLens's HookPoint): the identity unless hooks are
/// attached. With no hooks it costs one list-count check.
/// </summary>
public sealed class HookPoint
{
    readonly List<HookFunction> _hooks = [];
    Func<Tensor, Tensor>? _replacement;
    readonly List<HookFunction> _backwardHooks = [];
    Exception? _backwardError;

    public HookPoint(string name) { Name = name; Layer = ParseLayer(name); }

    /// <summary>Full TransformerLens name, e.g. <c>blocks.1.attn.hook_pattern</c>.</summary>
    public string Name { get; }

    /// <summary>The block index the hook point lives in, or null for the embedding and final hooks.</summary>
    public int? Layer { get; }

    /// <summary>Whether anything runs here: forward or backward hooks (either needs the activation itself), or a module
    /// spliced in, so fused kernels step aside.</summary>
    public bool HasHooks => _hooks.Count > 0 || _backwardHooks.Count > 0 || _replacement is not null;

    public bool HasBackwardHooks => _backwardHooks.Count > 0;

    public int HookCount => _hooks.Count + _backwardHooks.Count;

    /// <summary>
    /// Runs the forward hooks in the order they were added, each on the previous one's result; then,
    /// when backward hooks are attached and the activation takes part in autograd, puts an identity
    /// node in the graph that runs them on the activation's gradient during the backward pass.
    /// </summary>
    public Tensor Run(Tensor x)
    {
        if (_replacement is not null) x = _replacement(x);
        if (_hooks.Count == 0 && _backwardHooks.Count == 0) return x;
        for (int i = 0; i < _hooks.Count; i++)
        {
            var replacement = _hooks[i](x, this);
            if (replacement is not null) x = replacement;
        }
        if (_backwardHooks.Count > 0 && x.requires_grad && is_grad_enabled())
            x = BackwardHookNode.Attach(x, this, [.. _backwardHooks]);
        return x;
    }

    /// <summary>Attaches a forward hook; disposing the result removes it.</summary>
    public IDisposable Add(HookFunction fn) => Add(fn, HookDirection.Forward);

    /// <summary>Attaches a forward or backward hook; disposing the result removes it.</summary>
    public IDisposable Add(HookFunction fn, HookDirection direction)
    {
        var list = direction == HookDirection.Forward ? _hooks : _backwardHooks;
        list.Add(fn);
        return new Removal(() => list.Remove(fn));
    }

    public void Clear() { _hooks.Clear(); _backwardHooks.Clear(); }

    /// <summary>
    /// Runs backward hooks on a gradient (called by the autograd graph). An exception cannot cross the
    /// native backward pass, so it is kept and rethrown by <see cref="ThrowBackwardError"/>; the gradient
    /// then passes on unchanged.
    /// </summary>
    internal Tensor RunBackward(Tensor gradient, IReadOnlyList<HookFunction> hooks)
    {
        try
        {
            var g = gradient;
            foreach (var fn in hooks)
            {
                var replacement = fn(g, this);
                if (replacement is null) continue;
                if (!replacement.shape.SequenceEqual(gradient.shape))
                    throw new InvalidOperationException($"a backward hook on {Name} returned a gradient of shape " +
                        $"[{string.Join(", ", replacement.shape)}]; the activation's gradient has shape " +
                        $"[{string.Join(", ", gradient.shape)}]");
                g = replacement;
            }
            return g;
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _backwardError, e, null);
            return gradient;
        }
    }

    /// <summary>Rethrows (once) an exception raised by a backward hook of this point during the last backward
    /// pass.</summary>
    internal void ThrowBackwardError()
    {
        var e = Interlocked.Exchange(ref _backwardError, null);
        if (e is not null)
            throw new InvalidOperationException(
                $"a backward hook on {Name} failed during the backward pass: {e.Message}", e);
    }

    /// <summary>Whether a module is spliced in here (<see cref="Splice"/>).</summary>
    public bool IsSpliced => _replacement is not null;

    /// <summary>
    /// Splices a module into this point (HookedSAETransformer's add_sae): its output replaces the
    /// activation before the hooks run, so the hooks here see the module's output. One at a time;
    /// disposing the result removes it.
    /// </summary>
    public IDisposable Splice(Func<Tensor, Tensor> module)
    {
        if (_replacement is not null)
            throw new InvalidOperationException($"{Name} already has a module spliced in; detach it first");
        _replacement = module;
        return new Removal(() => { if (_replacement == module) _replacement = null; });
    }

    public override string ToString() => $"HookPoint({Name})";

    static int? ParseLayer(string name)
    {
        if (!name.StartsWith("blocks.", StringComparison.Ordinal)) return null;
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
