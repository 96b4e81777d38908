using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Attribution patching (Nanda's linear approximation of activation patching): from one clean forward
/// and one corrupted forward and backward, the effect of patching a piece of an activation from the
/// clean run into the corrupted run is estimated as Σ (clean − corrupted) · ∂metric/∂activation, the
/// gradient taken at the corrupted run and the sum over the batch and every dimension that is not an
/// index axis. Any activation and any split of it (by layer, position, head, destination position ...)
/// come from the same two runs. <see cref="ActivationPatching"/> gives the true effect (one patched forward
/// per cell, as <see cref="Patching"/>) and <see cref="Compare"/> both with their correlations.
/// </summary>
public sealed class AttributionPatching : IDisposable
{
    readonly HookedTransformer _model;
    readonly Tensor _corruptedTokens;
    readonly Func<Tensor, Tensor> _metric;
    readonly CachedRun _clean, _corrupted;
    readonly LogitsRead? _metricReads;
    readonly Tensor? _attentionMask;
    double? _plainCorruptedMetric;

    AttributionPatching(HookedTransformer model, Tensor corruptedTokens, Func<Tensor, Tensor> metric,
        LogitsRead? metricReads, CachedRun clean, double cleanMetric, CachedRun corrupted, Tensor? attentionMask)
    {
        (_model, _corruptedTokens, _metric, _metricReads, _clean, _corrupted, _attentionMask) =
            (model, corruptedTokens, metric, metricReads, clean, corrupted, attentionMask);
        CleanMetric = cleanMetric;
        CorruptedMetric = corrupted.Metric!.Value;
    }

    /// <summary>
    /// The clean run (cached) and the corrupted run with its gradients, for every hook point or those
    /// passing <paramref name="namesFilter"/>. <paramref name="metric"/> maps logits to a scalar tensor
    /// (e.g. <see cref="LogitDifference.Differentiable"/>); clean and corrupted tokens must have the same shape.
    /// <paramref name="metricReads"/> names the logits the metric reads (e.g. <see cref="LogitDifference.Reads"/>):
    /// both runs then compute and differentiate only those (the 50,257-wide unembedding of every position is
    /// most of a short prompt's forward), and <see cref="ActivationPatching"/> passes it on to the patching sweep.
    /// With an attention mask [batch, pos] (clean and corrupted texts padded alike) both runs get it and only
    /// real entries count in the sums: pad positions are never patched.
    /// </summary>
    public static AttributionPatching Run(HookedTransformer model, Tensor cleanTokens, Tensor corruptedTokens,
        Func<Tensor, Tensor> metric,
        Func<string, bool>? namesFilter = null, LogitsRead? metricReads = null, Tensor? attentionMask = null)
    {
        if (cleanTokens.dim() == 1) cleanTokens = cleanTokens.unsqueeze(0);
        if (corruptedTokens.dim() == 1) corruptedTokens = corruptedTokens.unsqueeze(0);
        if (!cleanTokens.shape.SequenceEqual(corruptedTokens.shape))
            throw new ArgumentException($"the clean tokens [{string.Join(", ", cleanTokens.shape)}] and the " +
                $"corrupted tokens [{string.Join(", ", corruptedTokens.shape)}] must have the same shape");
        // A cache that asks for ln_final's or the unembedding's hooks needs the full tail of the forward.
        bool partial = metricReads is { IsAll: false } && namesFilter is not null
            && !model.HookNames.Any(n => (n.StartsWith("ln_final.", StringComparison.Ordinal)
            || n.StartsWith("unembed.", StringComparison.Ordinal)) && namesFilter(n));
        var clean = partial
            ? model.RunWithCache(cleanTokens, ReturnType.Logits, namesFilter, attentionMask: attentionMask,
                stopAtLayer: model.Config.NLayers)
            : model.RunWithCache(cleanTokens, ReturnType.Logits, namesFilter, attentionMask: attentionMask);
        try
        {
            double cleanMetric = partial
                ? ReadMetricValue(model, metric, metricReads!, clean.Residual)
                : MetricValue(metric, clean.Logits);
            var corrupted = model.Backward(corruptedTokens, metric, namesFilter, attentionMask: attentionMask,
                metricReads: partial ? metricReads : null);
            var corruptedTokensKept = corruptedTokens.detach().DetachFromDisposeScope();
            var maskKept = attentionMask?.detach().clone().DetachFromDisposeScope();
            return new AttributionPatching(model, corruptedTokensKept, metric, metricReads, clean, cleanMetric,
                corrupted, maskKept);
        }
        catch { clean.Dispose(); throw; }
    }

    /// <summary>The metric of the clean run.</summary>
    public double CleanMetric { get; }

    /// <summary>The metric of the corrupted run (at which the gradients are taken).</summary>
    public double CorruptedMetric { get; }

    public ActivationCache CleanCache => _clean.Cache;

    /// <summary>The corrupted run's activations and their gradients (<c>NAME_grad</c>).</summary>
    public ActivationCache CorruptedCache => _corrupted.Cache;

    /// <summary>
    /// The estimated change of the metric when the part of <paramref name="activationName"/> (shorthand,
    /// e.g. "resid_pre", "z", "pattern") picked by each index is patched from the clean run. Axes start
    /// with "layer", then any of "pos", "head" (per-head activations and patterns), "dest_pos", "src_pos"
    /// (patterns and scores), "neuron" (MLP activations).
    /// </summary>
    public PatchingResult Attribute(string activationName, IReadOnlyList<string> indexAxes)
    {
        CheckAxes(indexAxes);
        using var scope = NewDisposeScope();
        var perLayer = new List<Tensor>();
        for (int layer = 0; layer < _model.Config.NLayers; layer++)
        {
            var name = ActName.Get(activationName, layer);
            var clean = Cached(_clean.Cache, name, "clean run");
            var corrupted = Cached(_corrupted.Cache, name, "corrupted run");
            var grad = Cached(_corrupted.Cache, name + "_grad", "corrupted run's gradients");
            var keep = indexAxes.Skip(1).Select(a => Dim(name, corrupted, a)).ToArray();
            var product =
                (clean.to(ScalarType.Float64) - corrupted.to(ScalarType.Float64)) * grad.to(ScalarType.Float64);
            if (_attentionMask is not null)
                product = product.masked_fill(MaskedEntries.Real(product, name, _attentionMask).logical_not(), 0.0);
            var summed =
                Enumerable.Range(0, (int)product.dim()).Where(d => !keep.Contains(d)).Select(d => (long)d).ToArray();
            var reduced = summed.Length == product.dim() ? product.sum() : product.sum(summed);
            var ascending = keep.OrderBy(d => d).ToList();
            if (keep.Length > 1) reduced = reduced.permute(keep.Select(d => (long)ascending.IndexOf(d)).ToArray());
            perLayer.Add(reduced);
        }
        var values = stack(perLayer, 0).MoveToOuterDisposeScope();
        return new PatchingResult(values, indexAxes.ToList(),
            indexAxes.Select((a, i) => Labels(a, values.shape[i])).ToList());
    }

    /// <summary>
    /// The true effect of the same patches: the metric of each patched corrupted run minus the corrupted
    /// run's metric (the setters of <see cref="Patching"/>, batched, with the metric's declared reads).
    /// </summary>
    public PatchingResult ActivationPatching(string activationName, IReadOnlyList<string> indexAxes)
    {
        CheckAxes(indexAxes);
        var name0 = ActName.Get(activationName, 0);
        var setter = SetterFor(name0, Cached(_corrupted.Cache, name0, "corrupted run"), indexAxes);
        double corrupted = _plainCorruptedMetric ??= PlainCorruptedMetric();
        using var patched = Patching.Generic(_model, _corruptedTokens, _clean.Cache,
            logits => MetricValue(_metric, logits), activationName, indexAxes, setter,
            new PatchingOptions { MetricReads = _metricReads }, _attentionMask);
        return new PatchingResult(patched.Values - corrupted, patched.AxisNames, patched.AxisLabels);
    }

    /// <summary>Attribution and activation patching side by side, with their Pearson and Spearman correlations over
    /// every cell.</summary>
    public AttributionComparison Compare(string activationName, IReadOnlyList<string> indexAxes)
    {
        var attribution = Attribute(activationName, indexAxes);
        try
        {
            var patching = ActivationPatching(activationName, indexAxes);
            return new AttributionComparison(attribution, patching);
        }
        catch { attribution.Dispose(); throw; }
    }

    // ---- the usual splits (TransformerLens's patching functions, estimated) -----------------------

    public PatchingResult ResidPre() => Attribute("resid_pre", ["layer", "pos"]);
    public PatchingResult ResidMid() => Attribute("resid_mid", ["layer", "pos"]);
    public PatchingResult AttnOut() => Attribute("attn_out", ["layer", "pos"]);
    public PatchingResult MlpOut() => Attribute("mlp_out", ["layer", "pos"]);
    public PatchingResult AttnHeadOutAllPos() => Attribute("z", ["layer", "head"]);
    public PatchingResult AttnHeadOutByPos() => Attribute("z", ["layer", "pos", "head"]);
    public PatchingResult AttnHeadQAllPos() => Attribute("q", ["layer", "head"]);
    public PatchingResult AttnHeadKAllPos() => Attribute("k", ["layer", "head"]);
    public PatchingResult AttnHeadVAllPos() => Attribute("v", ["layer", "head"]);
    public PatchingResult AttnHeadPatternAllPos() => Attribute("pattern", ["layer", "head"]);
    public PatchingResult AttnHeadPatternByDestPos() => Attribute("pattern", ["layer", "head", "dest_pos"]);

    public void Dispose()
    {
        _clean.Dispose();
        _corrupted.Dispose();
        _corruptedTokens.Dispose();
        _attentionMask?.Dispose();
    }

    // ---- helpers ---------------------------------------------------------------------------------

    internal static double MetricValue(Func<Tensor, Tensor> metric, Tensor logits)
    {
        using var scope = NewDisposeScope();
        var m = metric(logits);
        if (m.numel() != 1)
            throw new ArgumentException(
                $"the metric must be a scalar (one number), got a tensor of shape [{string.Join(", ", m.shape)}]");
        return m.to(ScalarType.Float64).item<double>();
    }

    static double ReadMetricValue(HookedTransformer model, Func<Tensor, Tensor> metric, LogitsRead reads,
        Tensor residual)
    {
        using var read = model.ReadLogits(residual, reads);
        using var logits = reads.Expand(read, residual.shape[1], model.Config.DVocabOut);
        double value = MetricValue(metric, logits);
        return double.IsNaN(value)
            ? throw new ArgumentException($"the metric gave NaN on the logits it declares it reads ({reads}): it " +
                $"reads other logits; declare them in metricReads (null: every logit)")
            : value;
    }

    double PlainCorruptedMetric()
    {
        using var output = _model.Forward(_corruptedTokens, ReturnType.Logits, attentionMask: _attentionMask);
        return MetricValue(_metric, output.Logits!);
    }

    static void CheckAxes(IReadOnlyList<string> axes)
    {
        if (axes.Count == 0 || axes[0] != "layer")
            throw new ArgumentException("the first index axis must be \"layer\"");
        if (axes.Distinct().Count() != axes.Count)
            throw new ArgumentException($"an index axis appears twice in [{string.Join(", ", axes)}]");
    }

    static Tensor Cached(ActivationCache cache, string name, string what) =>
        cache.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException(
            $"the {what} has no '{name}' (the hook does not fire on this model, or the names filter left it out)");

    static bool PatternLike(string name) => name.EndsWith(".hook_pattern", StringComparison.Ordinal)
        || name.EndsWith(".hook_attn_scores", StringComparison.Ordinal);

    /// <summary>Where an index axis lies in an activation's layout (see the shapes in TransformerLens's
    /// HookPoints).</summary>
    static int Dim(string name, Tensor activation, string axis)
    {
        bool pattern = PatternLike(name), perHead = activation.dim() == 4 && !pattern;
        int? dim = axis switch
        {
            "pos" when !pattern => 1,
            "head" or "head_index" when pattern => 1,
            "head" or "head_index" when perHead => 2,
            "dest_pos" when pattern => 2,
            "src_pos" when pattern => 3,
            "neuron" when activation.dim() == 3 && name.Contains(".mlp.hook_") => 2,
            _ => null,
        };
        return dim
            ?? throw new ArgumentException($"{name} [{string.Join(", ", activation.shape)}] has no '{axis}' axis to " +
            $"index (pos; head for per-head activations; head, dest_pos, src_pos for patterns; neuron for MLP " +
            $"activations)");
    }

    static PatchSetter SetterFor(string name, Tensor activation, IReadOnlyList<string> axes)
    {
        bool pattern = PatternLike(name), perHead = activation.dim() == 4 && !pattern;
        var rest = string.Join(",", axes.Skip(1).Select(a => a == "head_index" ? "head" : a));
        return (pattern, perHead, rest) switch
        {
            (_, _, "") => Patching.LayerSetter,
            (false, _, "pos") => Patching.LayerPosSetter,
            (false, true, "head") => Patching.LayerHeadVectorSetter,
            (false, true, "pos,head") => Patching.LayerPosHeadVectorSetter,
            (true, _, "head") => Patching.LayerHeadPatternSetter,
            (true, _, "head,dest_pos") => Patching.LayerHeadPosPatternSetter,
            (true, _, "head,dest_pos,src_pos") => Patching.LayerHeadDestSrcPosPatternSetter,
            _ => throw new ArgumentException($"activation patching has no setter for {name} by " +
                $"[{string.Join(", ", axes)}] (attribution alone is available)"),
        };
    }

    static IReadOnlyList<string> Labels(string axis, long size) =>
        Enumerable.Range(0, checked((int)size))
            .Select(i => axis is "head" or "head_index"
                ? $"H{i}"
                : axis == "layer" ? $"L{i}" : i.ToString(CultureInfo.InvariantCulture)).ToList();
}
