using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// HookedSAETransformer's semantics (SAELens analysis/hooked_sae_transformer.py) on a Lens model:
/// attaching an SAE splices it into its hook point, so the point's output becomes the SAE's output
/// (the reconstruction, or with <c>useErrorTerm</c> the reconstruction plus the error, which leaves the
/// model's numbers unchanged while exposing the features). The SAE's hook points
/// <c>&lt;hook&gt;.hook_sae_input/acts_pre/acts_post/recons/error/output</c> join the model's hook
/// dictionary while attached: they are hooked and cached by name like any other. Hooks on the host
/// point itself see the SAE's output (SAELens: hooks on the SAE module). Disposing the handle detaches.
/// </summary>
public static class SaeSplicing
{
    public static IDisposable AttachSae(this HookedTransformer model, SparseAutoencoder sae, bool useErrorTerm = false)
    {
        var host = model.Hook(sae.HookName);
        if (sae.Device.type != model.Device.type || sae.Device.index != model.Device.index)
            throw new SaeException($"{sae.Source}: the SAE is on {sae.Device} but the model on {model.Device} (move " +
                $"it with sae.To(model.Device))");
        if (sae.Dtype != model.Dtype)
            throw new SaeException($"{sae.Source}: the SAE's dtype is {HookedTransformer.NameOf(sae.Dtype)} but the " +
                $"model's {HookedTransformer.NameOf(model.Dtype)}; load the model in the SAE's dtype");
        if (host.IsSpliced)
            throw new SaeException($"{sae.Source}: an SAE is already attached at {sae.HookName}; detach it first");
        var registered = model.RegisterHookPoints(sae.HookPoints);
        try
        {
            var splice = host.Splice(x => sae.Forward(x, useErrorTerm));
            return new Detach(splice, registered);
        }
        catch { registered.Dispose(); throw; }
    }

    /// <summary>Attaches several SAEs (at different hook points) for a scope; disposing detaches them all.</summary>
    public static IDisposable Saes(this HookedTransformer model, IEnumerable<SparseAutoencoder> saes,
        bool useErrorTerm = false)
    {
        var handles = new List<IDisposable>();
        try { foreach (var sae in saes) handles.Add(model.AttachSae(sae, useErrorTerm)); }
        catch { foreach (var h in Enumerable.Reverse(handles)) h.Dispose(); throw; }
        return new Detach([.. Enumerable.Reverse(handles)]);
    }

    /// <summary>run_with_saes: a forward with the SAEs attached for this run only.</summary>
    public static ModelOutput RunWithSaes(this HookedTransformer model, Tensor tokens,
        IEnumerable<SparseAutoencoder> saes,
        bool useErrorTerm = false, ReturnType returnType = ReturnType.Logits, bool lossPerToken = false)
    {
        using var _ = model.Saes(saes, useErrorTerm);
        return model.Forward(tokens, returnType, lossPerToken);
    }

    /// <summary>run_with_cache_with_saes: a cached forward with the SAEs attached; the cache includes their hook
    /// points.</summary>
    public static CachedRun RunWithCacheWithSaes(this HookedTransformer model, Tensor tokens,
        IEnumerable<SparseAutoencoder> saes,
        bool useErrorTerm = false, Func<string, bool>? namesFilter = null, ReturnType returnType = ReturnType.Logits,
        bool lossPerToken = false)
    {
        using var _ = model.Saes(saes, useErrorTerm);
        return model.RunWithCache(tokens, returnType, namesFilter, lossPerToken: lossPerToken);
    }

    sealed class Detach(params IDisposable[] handles) : IDisposable
    {
        IDisposable[]? _handles = handles;
        public void Dispose()
        {
            if (_handles is null) return;
            foreach (var h in _handles) h.Dispose();
            _handles = null;
        }
    }
}
