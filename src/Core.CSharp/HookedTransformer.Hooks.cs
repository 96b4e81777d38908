using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens;

/// <summary>A forward hook to attach: a hook name (full or shorthand) or a predicate over names, and the function.</summary>
/// <summary>The result of <see cref="HookedTransformer.RunWithCache(Tensor, Func{string, bool}?, bool)"/>: owns the logits, loss and cache.</summary>
public sealed class CachedRun(Tensor? logits, Tensor? loss, ActivationCache cache) : IDisposable
{
    public Tensor Logits => logits ?? throw new InvalidOperationException("this run did not ask for logits");
    public Tensor Loss => loss ?? throw new InvalidOperationException("this run did not ask for the loss");
    public ActivationCache Cache => cache;
    public void Deconstruct(out Tensor logitsOut, out ActivationCache cacheOut) { logitsOut = Logits; cacheOut = cache; }

    /// <summary>After a gradient run that asked for them: d metric / d parameter by state-dict name (else empty).</summary>
    public IReadOnlyDictionary<string, Tensor> ParameterGradients { get; init; } = new Dictionary<string, Tensor>();

    /// <summary>After a gradient run: the value of the metric that was differentiated.</summary>
    public double? Metric { get; init; }

    public void Dispose() { logits?.Dispose(); loss?.Dispose(); cache.Dispose(); foreach (var g in ParameterGradients.Values) g.Dispose(); }
}

public sealed record HookSpec(string? Name, Func<string, bool>? Filter, HookFunction Function, HookDirection Direction = HookDirection.Forward)
{
    public static HookSpec Named(string name, HookFunction fn) => new(name, null, fn);
    public static HookSpec Where(Func<string, bool> filter, HookFunction fn) => new(null, filter, fn);

    /// <summary>A backward hook: sees the gradient flowing into the activation and may return a replacement.</summary>
    public static HookSpec Backward(string name, HookFunction fn) => new(name, null, fn, HookDirection.Backward);
    public static HookSpec BackwardWhere(Func<string, bool> filter, HookFunction fn) => new(null, filter, fn, HookDirection.Backward);
}

public sealed partial class HookedTransformer
{
    readonly List<IDisposable> _permanentHooks = [];

    /// <summary>Attaches a hook until <see cref="ResetHooks"/> (or until the returned handle is disposed).</summary>
    public IDisposable AddHook(string name, HookFunction fn, HookDirection direction = HookDirection.Forward)
    {
        var handle = Hook(name).Add(fn, direction);
        _permanentHooks.Add(handle);
        return handle;
    }

    /// <summary>Attaches a hook to every hook point whose full name passes the filter.</summary>
    public IDisposable AddHook(Func<string, bool> filter, HookFunction fn, HookDirection direction = HookDirection.Forward)
    {
        var handle = new CompositeHandle(_hookDict.Values.Where(h => filter(h.Name)).Select(h => h.Add(fn, direction)).ToList());
        _permanentHooks.Add(handle);
        return handle;
    }

    /// <summary>Removes every hook from every hook point.</summary>
    public void ResetHooks()
    {
        foreach (var h in _hookDict.Values) h.Clear();
        _permanentHooks.Clear();
    }

    /// <summary>
    /// Attaches hooks for a scope: <c>using (model.Hooks(...)) { ... }</c> (F#: <c>use _ = model.Hooks ...</c>);
    /// disposing removes exactly these hooks, even when the body throws.
    /// </summary>
    public IDisposable Hooks(IEnumerable<HookSpec> hooks)
    {
        var handles = new List<IDisposable>();
        try
        {
            foreach (var spec in hooks)
            {
                if (spec.Name is not null) handles.Add(Hook(spec.Name).Add(spec.Function, spec.Direction));
                else foreach (var hp in _hookDict.Values)
                    if (spec.Filter!(hp.Name)) handles.Add(hp.Add(spec.Function, spec.Direction));
            }
        }
        catch { foreach (var h in handles) h.Dispose(); throw; }
        return new CompositeHandle(handles);
    }

    /// <summary>Hooks by name; shorthand names are resolved with <see cref="ActName.Get"/>.</summary>
    public IDisposable Hooks(params (string Name, HookFunction Fn)[] hooks) =>
        Hooks(hooks.Select(h => HookSpec.Named(h.Name, h.Fn)));

    /// <summary>Runs the model with temporary hooks and returns the logits.</summary>
    public Tensor RunWithHooks(Tensor tokens, params (string Name, HookFunction Fn)[] hooks)
    {
        using var _ = Hooks(hooks);
        return Forward(tokens);
    }

    public ModelOutput RunWithHooks(Tensor tokens, IEnumerable<HookSpec> hooks, ReturnType returnType, bool lossPerToken = false)
    {
        using var _ = Hooks(hooks);
        return Forward(tokens, returnType, lossPerToken);
    }

    /// <summary>
    /// Runs the model recording activations: every hook point, or those whose full name passes
    /// <paramref name="namesFilter"/>. Cached tensors are the forward pass's own (no copies).
    /// </summary>
    public CachedRun RunWithCache(Tensor tokens, Func<string, bool>? namesFilter = null, bool removeBatchDim = false) =>
        RunWithCache(tokens, ReturnType.Logits, namesFilter, removeBatchDim);

    public CachedRun RunWithCache(Tensor tokens, ReturnType returnType, Func<string, bool>? namesFilter = null, bool removeBatchDim = false, bool lossPerToken = false)
    {
        var store = new List<KeyValuePair<string, Tensor>>();
        HookFunction record = (x, hp) => { store.Add(new(hp.Name, x.detach().DetachFromDisposeScope())); return null; };
        ModelOutput output;
        try
        {
            using (Hooks([HookSpec.Where(namesFilter ?? (_ => true), record)]))
                output = Forward(tokens, returnType, lossPerToken);
        }
        catch { foreach (var kv in store) kv.Value.Dispose(); throw; }
        var cache = new ActivationCache(this, store);
        if (removeBatchDim) cache.RemoveBatchDim();
        return new CachedRun(output.Logits, output.Loss, cache);
    }

    /// <summary>Names-filter helper: a glob with * (e.g. <c>blocks.*.attn.hook_pattern</c>) or a shorthand name.</summary>
    public static Func<string, bool> NamesFilter(params string[] patterns)
    {
        var regexes = patterns.Select(p => p.Contains('*')
            ? new System.Text.RegularExpressions.Regex("^" + System.Text.RegularExpressions.Regex.Escape(p).Replace("\\*", "[^.]*") + "$")
            : new System.Text.RegularExpressions.Regex("^" + System.Text.RegularExpressions.Regex.Escape(ActName.Get(p)) + "$")).ToList();
        return name => regexes.Any(r => r.IsMatch(name));
    }

    sealed class CompositeHandle(List<IDisposable> handles) : IDisposable
    {
        public void Dispose() { foreach (var h in handles) h.Dispose(); handles.Clear(); }
    }
}
