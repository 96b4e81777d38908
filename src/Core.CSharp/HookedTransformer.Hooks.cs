using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens;

/// <summary>A forward hook to attach: a hook name (full or shorthand) or a predicate over names, and the
/// function.</summary>
/// <summary>The result of <see cref="HookedTransformer.RunWithCache(Tensor, Func{string, bool}?, bool)"/>: owns the
/// logits, loss and cache.</summary>
public sealed class CachedRun(Tensor? logits, Tensor? loss, ActivationCache cache, Tensor? residual = null)
    : IDisposable
{
    public Tensor Logits => logits
        ?? throw new InvalidOperationException(residual is null
            ? "this run did not ask for logits"
            : "this run stopped at a layer: its output is Residual");
    public Tensor Loss => loss ?? throw new InvalidOperationException("this run did not ask for the loss");
    /// <summary>The residual stream of a run with stop_at_layer.</summary>
    public Tensor Residual =>
        residual ?? throw new InvalidOperationException("this run did not stop at a layer (stopAtLayer)");
    public ActivationCache Cache => cache;
    public void Deconstruct(out Tensor logitsOut, out ActivationCache cacheOut)
    {
        logitsOut = Logits;
        cacheOut = cache;
    }

    /// <summary>After a gradient run that asked for them: d metric / d parameter by state-dict name (else
    /// empty).</summary>
    public IReadOnlyDictionary<string, Tensor> ParameterGradients { get; init; } = new Dictionary<string, Tensor>();

    /// <summary>After a gradient run: the value of the metric that was differentiated.</summary>
    public double? Metric { get; init; }

    public void Dispose()
    {
        logits?.Dispose();
        loss?.Dispose();
        residual?.Dispose();
        cache.Dispose();
        foreach (var g in ParameterGradients.Values) g.Dispose();
    }
}

public sealed record HookSpec(string? Name, Func<string, bool>? Filter, HookFunction Function,
    HookDirection Direction = HookDirection.Forward)
{
    public static HookSpec Named(string name, HookFunction fn) => new(name, null, fn);
    public static HookSpec Where(Func<string, bool> filter, HookFunction fn) => new(null, filter, fn);

    /// <summary>A backward hook: sees the gradient flowing into the activation and may return a replacement.</summary>
    public static HookSpec Backward(string name, HookFunction fn) => new(name, null, fn, HookDirection.Backward);
    public static HookSpec BackwardWhere(Func<string, bool> filter, HookFunction fn) =>
        new(null, filter, fn, HookDirection.Backward);
}

public sealed partial class HookedTransformer
{
    readonly List<IDisposable> _permanentHooks = [];

    /// <summary>Attaches a hook until <see cref="ResetHooks"/> (or until the returned handle is disposed).</summary>
    public IDisposable AddHook(string name, HookFunction fn, HookDirection direction = HookDirection.Forward)
    {
        var handle = EnabledHook(name).Add(fn, direction);
        _permanentHooks.Add(handle);
        return handle;
    }

    /// <summary>Attaches a hook to every hook point whose full name passes the filter.</summary>
    public IDisposable AddHook(Func<string, bool> filter, HookFunction fn,
        HookDirection direction = HookDirection.Forward)
    {
        RefuseDisabledOnly(filter);
        var handle =
            new CompositeHandle(_hookDict.Values.Where(h => filter(h.Name)).Select(h => h.Add(fn, direction)).ToList());
        _permanentHooks.Add(handle);
        return handle;
    }

    /// <summary>
    /// Adds hook points that live outside the model's modules (a spliced SAE's <c>hook_sae_*</c>) to
    /// <see cref="HookDict"/>, so they are hooked and cached by name like any other, until the result
    /// is disposed. A name already present is refused.
    /// </summary>
    public IDisposable RegisterHookPoints(IEnumerable<HookPoint> points)
    {
        var added = new List<HookPoint>();
        foreach (var p in points)
        {
            if (_hookDict.ContainsKey(p.Name))
            {
                foreach (var a in added) _hookDict.Remove(a.Name);
                throw new ArgumentException($"hook point '{p.Name}' already exists in the model");
            }
            _hookDict.Add(p.Name, p);
            added.Add(p);
        }
        return new CompositeHandle([new Unregister(() =>
        {
            foreach (var a in added) if (_hookDict.TryGetValue(a.Name, out var h) && h == a) _hookDict.Remove(a.Name);
        })]);
    }

    sealed class Unregister(Action action) : IDisposable
    {
        Action? _action = action;
        public void Dispose() { _action?.Invoke(); _action = null; }
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
                if (spec.Name is not null) handles.Add(EnabledHook(spec.Name).Add(spec.Function, spec.Direction));
                else
                {
                    RefuseDisabledOnly(spec.Filter!);
                    foreach (var hp in _hookDict.Values)
                        if (spec.Filter!(hp.Name)) handles.Add(hp.Add(spec.Function, spec.Direction));
                }
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

    public ModelOutput RunWithHooks(Tensor tokens, IEnumerable<HookSpec> hooks, ReturnType returnType,
        bool lossPerToken = false,
        Tensor? attentionMask = null, int? startAtLayer = null, int? stopAtLayer = null, Tensor? lossTokens = null)
    {
        using var _ = Hooks(hooks);
        return Forward(tokens, returnType, lossPerToken, attentionMask, startAtLayer, stopAtLayer, lossTokens);
    }

    /// <summary>
    /// Runs the model recording activations: every hook point, or those whose full name passes
    /// <paramref name="namesFilter"/>. Cached tensors are the forward pass's own (no copies).
    /// </summary>
    public CachedRun RunWithCache(Tensor tokens, Func<string, bool>? namesFilter = null, bool removeBatchDim = false) =>
        RunWithCache(tokens, ReturnType.Logits, namesFilter, removeBatchDim);

    /// <summary>
    /// Runs the model recording activations, with TransformerLens's forward arguments: an attention mask,
    /// start_at_layer (tokens is then the residual stream, and <paramref name="lossTokens"/> the tokens for a
    /// loss), stop_at_layer (the run's output is <see cref="CachedRun.Residual"/>). A filter that selects
    /// only hook points the config switches off is refused, naming the flag.
    /// </summary>
    public CachedRun RunWithCache(Tensor tokens, ReturnType returnType, Func<string, bool>? namesFilter = null,
        bool removeBatchDim = false, bool lossPerToken = false,
        Tensor? attentionMask = null, int? startAtLayer = null, int? stopAtLayer = null, Tensor? lossTokens = null)
    {
        var store = new List<KeyValuePair<string, Tensor>>();
        HookFunction record = (x, hp) => { store.Add(new(hp.Name, x.detach().DetachFromDisposeScope())); return null; };
        ModelOutput output;
        try
        {
            using (Hooks([HookSpec.Where(namesFilter ?? (_ => true), record)]))
                output =
                    Forward(tokens, returnType, lossPerToken, attentionMask, startAtLayer, stopAtLayer, lossTokens);
        }
        catch { foreach (var kv in store) kv.Value.Dispose(); throw; }
        var cache = new ActivationCache(this, store);
        if (removeBatchDim) cache.RemoveBatchDim();
        return new CachedRun(output.Logits, output.Loss, cache, output.Residual);
    }

    /// <summary>Names-filter helper: a glob with * (e.g. <c>blocks.*.attn.hook_pattern</c>) or a shorthand
    /// name.</summary>
    public static Func<string, bool> NamesFilter(params string[] patterns) => new HookNamePatterns(patterns).IsMatch;

    sealed class CompositeHandle(List<IDisposable> handles) : IDisposable
    {
        public void Dispose() { foreach (var h in handles) h.Dispose(); handles.Clear(); }
    }
}
