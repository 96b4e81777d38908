using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Gradient caches (TransformerLens's <c>run_with_cache(incl_bwd=True)</c>): one forward with a caching
/// hook and a gradient-recording backward hook on every hook point, then the backward pass of a scalar.
/// The cache holds each activation under its name and d scalar / d activation under <c>NAME_grad</c>
/// (forward entries in firing order, then the gradients in the order the backward pass reaches them,
/// then zeros for activations the scalar does not depend on).
/// Every hook point fires once per forward in Lens (ln1 runs once and feeds q, k and v), so
/// <c>blocks.L.ln1.hook_scale_grad</c> and <c>hook_normalized_grad</c> are the total gradient, where
/// TransformerLens keeps only the query path's share (its ln1 runs three times).
/// </summary>
public sealed partial class HookedTransformer
{
    /// <summary>
    /// <see cref="RunWithCache(Tensor, ReturnType, Func{string, bool}?, bool, bool, Tensor?, int?, int?, Tensor?)"/>
    /// with, when
    /// <paramref name="includeBackward"/> is set, the backward pass of the mean next-token loss (the
    /// return type must then include the loss) and every <c>NAME_grad</c> in the cache.
    /// </summary>
    public CachedRun RunWithCache(Tensor tokens, ReturnType returnType, bool includeBackward,
        Func<string, bool>? namesFilter = null,
        bool removeBatchDim = false, bool parameterGradients = false, Tensor? attentionMask = null)
    {
        if (!includeBackward)
            return RunWithCache(tokens, returnType, namesFilter, removeBatchDim, attentionMask: attentionMask);
        if (returnType is not (ReturnType.Loss or ReturnType.Both))
            throw new ArgumentException($"includeBackward differentiates the loss: ask for ReturnType.Loss or " +
                $"ReturnType.Both (got {returnType})");
        return GradientRun(tokens, returnType, output => output.Loss!, namesFilter, removeBatchDim, parameterGradients,
            attentionMask);
    }

    /// <summary>
    /// Runs the model on <paramref name="tokens"/>, computes <paramref name="metric"/> of the logits (it must
    /// return a scalar tensor that depends on them) and its backward pass: the result caches every
    /// activation (or those passing <paramref name="namesFilter"/>), its gradient as <c>NAME_grad</c>, the
    /// detached logits, the metric's value, and with <paramref name="parameterGradients"/> d metric /
    /// d parameter for every parameter. Hooks already attached stay in force (forward hooks that replace
    /// activations are differentiated through).
    /// </summary>
    /// <remarks>
    /// <paramref name="metricReads"/> names the logits the metric reads: the forward then stops after the last
    /// block and only those are computed and differentiated (<see cref="ReadLogits"/>; the metric sees NaN
    /// elsewhere and a NaN metric is refused), and the run holds no logits.
    /// </remarks>
    public CachedRun Backward(Tensor tokens, Func<Tensor, Tensor> metric, Func<string, bool>? namesFilter = null,
        bool parameterGradients = false, Tensor? attentionMask = null, LogitsRead? metricReads = null)
    {
        if (metricReads is null || metricReads.IsAll)
            return GradientRun(tokens, ReturnType.Logits, output => metric(output.Logits!), namesFilter, false,
                parameterGradients, attentionMask);
        Tensor ReadMetric(ModelOutput output)
        {
            var residual = output.Residual!;
            var value =
                metric(metricReads.Expand(ReadLogits(residual, metricReads), residual.shape[1], Config.DVocabOut));
            using (var nan = value.isnan().any())
                if (nan.item<bool>())
                    throw new ArgumentException($"the metric gave NaN on the logits it declares it reads " +
                        $"({metricReads}): it reads other logits; declare them in metricReads (null: every logit)");
            return value;
        }
        return GradientRun(tokens, ReturnType.Logits, ReadMetric, namesFilter, false, parameterGradients, attentionMask,
            stopAtLayer: Config.NLayers);
    }

    CachedRun GradientRun(Tensor tokens, ReturnType returnType, Func<ModelOutput, Tensor> objective,
        Func<string, bool>? namesFilter,
        bool removeBatchDim, bool parameterGradients, Tensor? attentionMask, int? stopAtLayer = null)
    {
        var filter = namesFilter ?? (_ => true);
        var activations = new List<KeyValuePair<string, Tensor>>();
        var gradients = new List<KeyValuePair<string, Tensor>>();
        var parameterGrads = new Dictionary<string, Tensor>();
        HookFunction record =
            (x, hp) => { activations.Add(new(hp.Name, x.detach().DetachFromDisposeScope())); return null; };
        HookFunction recordGradient =
            (g, hp) => { gradients.Add(new(hp.Name + "_grad", g.detach().DetachFromDisposeScope())); return null; };
        var parameters = parameterGradients ? named_parameters().ToList() : [];
        var thawed = parameters.Where(p => !p.parameter.requires_grad).Select(p => p.parameter).ToList();
        Tensor? logits = null, loss = null;
        double value;
        try
        {
            foreach (var p in thawed) p.requires_grad = true;
            using var scope = NewDisposeScope();
            // the metric is differentiated even when the caller runs under no_grad
            using var gradientMode = enable_grad();
            using (Hooks([HookSpec.Where(filter, record), HookSpec.BackwardWhere(filter, recordGradient)]))
            {
                var output = Forward(tokens, returnType, attentionMask: attentionMask, stopAtLayer: stopAtLayer);
                var scalar = objective(output);
                if (scalar.numel() != 1)
                    throw new ArgumentException($"the metric must be a scalar (one number), got a tensor of shape " +
                        $"[{string.Join(", ", scalar.shape)}]");
                if (!scalar.requires_grad)
                    throw new ArgumentException("the metric does not depend on the logits through the model (it has " +
                        "no gradient): compute it from the logits it is given");
                value = scalar.to(ScalarType.Float64).item<double>();
                if (parameterGradients)
                {
                    var grads = autograd.grad([scalar.reshape()], parameters.Select(p => (Tensor)p.parameter).ToList(),
                        allow_unused: true);
                    for (int i = 0; i < parameters.Count; i++)
                    {
                        var g = grads[i];
                        parameterGrads[parameters[i].name] =
                            (g is null || g.IsInvalid ? zeros_like(parameters[i].parameter) : g.detach())
                                .DetachFromDisposeScope();
                    }
                }
                else scalar.reshape().backward();
                ThrowBackwardHookErrors();
                // No gradient reached these (the metric does not depend on them, e.g. above a constant
                // replacement): their gradient is zero, where TransformerLens leaves the entry out.
                var reached = gradients.Select(kv => kv.Key).ToHashSet();
                foreach (var (name, activation) in activations)
                    if (activation.is_floating_point() && !reached.Contains(name + "_grad"))
                        gradients.Add(new(name + "_grad", zeros_like(activation).DetachFromDisposeScope()));
                logits = output.Logits?.detach().DetachFromDisposeScope();
                loss = output.Loss?.detach().DetachFromDisposeScope();
            }
        }
        catch
        {
            foreach (var kv in activations.Concat(gradients)) kv.Value.Dispose();
            foreach (var g in parameterGrads.Values) g.Dispose();
            logits?.Dispose(); loss?.Dispose();
            throw;
        }
        finally
        {
            foreach (var p in thawed) p.requires_grad = false;
        }
        var cache = new ActivationCache(this, activations.Concat(gradients));
        if (removeBatchDim) cache.RemoveBatchDim();
        return new CachedRun(logits, loss, cache) { ParameterGradients = parameterGrads, Metric = value };
    }

    /// <summary>
    /// Rethrows an exception that a backward hook raised during the last backward pass (an exception
    /// cannot cross libtorch's native backward). Lens's gradient runs call it after their backward; after
    /// your own <c>backward()</c>, call it yourself (the next forward calls it too).
    /// </summary>
    public void ThrowBackwardHookErrors()
    {
        foreach (var h in _hookDict.Values) h.ThrowBackwardError();
    }
}
