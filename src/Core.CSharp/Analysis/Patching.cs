using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Copies part of the clean activation into the corrupted one, in place, for one index tuple
/// (the first entry is always the layer).
/// </summary>
public delegate void PatchSetter(Tensor corrupted, long[] index, Tensor clean);

/// <summary>
/// Activation patching as TransformerLens's <c>patching</c> module: run the model on the corrupted
/// tokens for each index tuple (layer, pos, head, ...), each time replacing one piece of one
/// activation with its value from the clean run's cache, and record the metric of the patched logits.
/// The clean and corrupted inputs must have the same shape. Index tuples are visited with the last
/// axis fastest; the result has one axis per index axis. With an attention mask [batch, pos] (the clean and
/// corrupted texts padded alike) every patched run gets the mask and only real entries are patched: pad
/// positions keep the corrupted run's values.
/// </summary>
public static class Patching
{
    /// <summary>
    /// The generic patcher: <paramref name="activationName"/> (shorthand, e.g. "resid_pre", "z") at each layer, over
    /// the given axes. The cells run as rows of batched forwards (<see cref="BatchedPatching"/>) unless
    /// <paramref name="options"/> asks for one forward per cell; both give the same numbers.
    /// </summary>
    public static PatchingResult Generic(HookedTransformer model, Tensor corruptedTokens, ActivationCache cleanCache,
        Func<Tensor, double> metric,
        string activationName, IReadOnlyList<string> indexAxes, PatchSetter setter, PatchingOptions? options = null,
        Tensor? attentionMask = null)
    {
        if (indexAxes.Count == 0 || indexAxes[0] != "layer")
            throw new ArgumentException("the first index axis must be \"layer\"");
        options ??= PatchingOptions.Default;
        using var scope = NewDisposeScope();
        if (corruptedTokens.dim() == 1) corruptedTokens = corruptedTokens.unsqueeze(0);
        var sizes = indexAxes.Select(a => AxisSize(model, corruptedTokens, activationName, a)).ToArray();
        var values = options.OneCellPerForward || model.AnyHooksAttached
            ? OneCellPerForward(model, corruptedTokens, cleanCache, metric, activationName, sizes, setter,
                attentionMask)
            : BatchedPatching.Sweep(model, corruptedTokens, cleanCache, metric, activationName, sizes, setter, options,
                attentionMask);
        var result = tensor(values, sizes, dtype: ScalarType.Float64).MoveToOuterDisposeScope();
        return new PatchingResult(result, indexAxes.ToList(), indexAxes.Select((a, i) => Labels(a, sizes[i])).ToList());
    }

    /// <summary>TransformerLens's way and the reference: one forward of the whole model per cell.</summary>
    static double[] OneCellPerForward(HookedTransformer model, Tensor corruptedTokens, ActivationCache cleanCache,
        Func<Tensor, double> metric, string activationName, long[] sizes, PatchSetter setter, Tensor? attentionMask)
    {
        var values = new double[sizes.Aggregate(1L, (p, s) => p * s)];
        var index = new long[sizes.Length];
        for (long flat = 0; flat < values.Length; flat++)
        {
            using var iteration = NewDisposeScope(); // frees what the metric allocates, run by run
            long rest = flat;
            for (int a = sizes.Length - 1; a >= 0; a--) { index[a] = rest % sizes[a]; rest /= sizes[a]; }
            var hookName = ActName.Get(activationName, (int)index[0]);
            if (!cleanCache.TryGetValue(hookName, out var clean))
                throw new KeyNotFoundException(
                    $"the clean cache has no '{hookName}' (cache it to patch {activationName})");
            var at = (long[])index.Clone();
            Tensor? Patch(Tensor corrupted, HookPoint hook)
            {
                if (!corrupted.shape.SequenceEqual(clean.shape))
                    throw new ArgumentException($"{hook.Name}: the corrupted activation " +
                        $"[{string.Join(", ", corrupted.shape)}] and the clean one " +
                        $"[{string.Join(", ", clean.shape)}] differ in shape (clean and corrupted inputs must have " +
                        $"the same shape)");
                var patched = corrupted.clone();
                setter(patched, at, clean.to(patched.dtype));
                if (attentionMask is null) return patched;
                using var real = MaskedEntries.Real(patched, hook.Name, attentionMask);
                return torch.where(real, patched, corrupted);
            }
            using var output = model.RunWithHooks(corruptedTokens, [HookSpec.Named(hookName, Patch)], ReturnType.Logits,
                attentionMask: attentionMask);
            values[flat] = metric(output.Logits!);
        }
        return values;
    }

    // ---- setters -------------------------------------------------------------------------------

    /// <summary>index = [layer]: the whole activation.</summary>
    public static void LayerSetter(Tensor corrupted, long[] index, Tensor clean) => corrupted.copy_(clean);

    /// <summary>index = [layer, pos]: activation[:, pos, ...] (everything but attention patterns).</summary>
    public static void LayerPosSetter(Tensor corrupted, long[] index, Tensor clean) =>
        Copy(corrupted.select(1, index[1]), clean.select(1, index[1]));

    /// <summary>index = [layer, pos, head]: activation[:, pos, head] of [batch, pos, head, ...].</summary>
    public static void LayerPosHeadVectorSetter(Tensor corrupted, long[] index, Tensor clean) =>
        Copy(corrupted.select(1, index[1]).select(1, index[2]), clean.select(1, index[1]).select(1, index[2]));

    /// <summary>index = [layer, head]: activation[:, :, head] of [batch, pos, head, ...].</summary>
    public static void LayerHeadVectorSetter(Tensor corrupted, long[] index, Tensor clean) =>
        Copy(corrupted.select(2, index[1]), clean.select(2, index[1]));

    /// <summary>index = [layer, head]: pattern[:, head] of [batch, head, dest, src].</summary>
    public static void LayerHeadPatternSetter(Tensor corrupted, long[] index, Tensor clean) =>
        Copy(corrupted.select(1, index[1]), clean.select(1, index[1]));

    /// <summary>index = [layer, head, dest_pos]: pattern[:, head, dest] of [batch, head, dest, src].</summary>
    public static void LayerHeadPosPatternSetter(Tensor corrupted, long[] index, Tensor clean) =>
        Copy(corrupted.select(1, index[1]).select(1, index[2]), clean.select(1, index[1]).select(1, index[2]));

    /// <summary>index = [layer, head, dest_pos, src_pos]: pattern[:, head, dest, src].</summary>
    public static void LayerHeadDestSrcPosPatternSetter(Tensor corrupted, long[] index, Tensor clean) =>
        Copy(corrupted.select(1, index[1]).select(1, index[2]).select(1, index[3]),
            clean.select(1, index[1]).select(1, index[2]).select(1, index[3]));

    static void Copy(Tensor target, Tensor source)
    {
        using (target) using (source) target.copy_(source);
    }

    // ---- the usual patches -----------------------------------------------------------------------

    /// <summary>resid_pre by layer and position → [layer, pos].</summary>
    public static PatchingResult ResidPre(HookedTransformer model, Tensor corruptedTokens, ActivationCache cleanCache,
        Func<Tensor, double> metric, PatchingOptions? options = null, Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "resid_pre", ["layer", "pos"], LayerPosSetter, options,
            attentionMask);

    /// <summary>resid_mid by layer and position → [layer, pos].</summary>
    public static PatchingResult ResidMid(HookedTransformer model, Tensor corruptedTokens, ActivationCache cleanCache,
        Func<Tensor, double> metric, PatchingOptions? options = null, Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "resid_mid", ["layer", "pos"], LayerPosSetter, options,
            attentionMask);

    /// <summary>attn_out by layer and position → [layer, pos].</summary>
    public static PatchingResult AttnOut(HookedTransformer model, Tensor corruptedTokens, ActivationCache cleanCache,
        Func<Tensor, double> metric, PatchingOptions? options = null, Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "attn_out", ["layer", "pos"], LayerPosSetter, options,
            attentionMask);

    /// <summary>mlp_out by layer and position → [layer, pos].</summary>
    public static PatchingResult MlpOut(HookedTransformer model, Tensor corruptedTokens, ActivationCache cleanCache,
        Func<Tensor, double> metric, PatchingOptions? options = null, Tensor? attentionMask = null)
    {
        if (model.Config.AttnOnly)
            throw new InvalidOperationException("this model is attention-only: it has no mlp_out to patch");
        return Generic(model, corruptedTokens, cleanCache, metric, "mlp_out", ["layer", "pos"], LayerPosSetter, options,
            attentionMask);
    }

    /// <summary>Each head's output (hook_z) at every position → [layer, head].</summary>
    public static PatchingResult AttnHeadOutAllPos(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "z", ["layer", "head"], LayerHeadVectorSetter, options,
            attentionMask);

    /// <summary>Each head's output (hook_z) by position → [layer, pos, head].</summary>
    public static PatchingResult AttnHeadOutByPos(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "z", ["layer", "pos", "head"], LayerPosHeadVectorSetter,
            options, attentionMask);

    /// <summary>Each head's queries at every position → [layer, head].</summary>
    public static PatchingResult AttnHeadQAllPos(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "q", ["layer", "head"], LayerHeadVectorSetter, options,
            attentionMask);

    /// <summary>Each (key-value) head's keys at every position → [layer, head].</summary>
    public static PatchingResult AttnHeadKAllPos(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "k", ["layer", "head"], LayerHeadVectorSetter, options,
            attentionMask);

    /// <summary>Each (key-value) head's values at every position → [layer, head].</summary>
    public static PatchingResult AttnHeadVAllPos(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "v", ["layer", "head"], LayerHeadVectorSetter, options,
            attentionMask);

    /// <summary>Each head's whole attention pattern → [layer, head].</summary>
    public static PatchingResult AttnHeadPatternAllPos(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null) =>
        Generic(model, corruptedTokens, cleanCache, metric, "pattern", ["layer", "head"], LayerHeadPatternSetter,
            options, attentionMask);

    /// <summary>
    /// resid_pre, attn_out and mlp_out by layer and position, stacked → [component, layer, pos]
    /// (TransformerLens's <c>get_act_patch_block_every</c>; attention-only models have no mlp_out and
    /// give only the first two).
    /// </summary>
    public static PatchingResult GetActPatchBlockEvery(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null)
    {
        var parts = new List<(string Name, PatchingResult Result)>
        {
            ("resid_pre", ResidPre(model, corruptedTokens, cleanCache, metric, options, attentionMask)),
            ("attn_out", AttnOut(model, corruptedTokens, cleanCache, metric, options, attentionMask)),
        };
        if (!model.Config.AttnOnly)
            parts.Add(("mlp_out", MlpOut(model, corruptedTokens, cleanCache, metric, options, attentionMask)));
        return Stack(parts, "component");
    }

    /// <summary>
    /// Each head's output, queries, keys, values and pattern patched at every position, stacked →
    /// [component, layer, head] (TransformerLens's <c>get_act_patch_attn_head_all_pos_every</c>).
    /// </summary>
    public static PatchingResult AttnHeadAllPosEvery(HookedTransformer model, Tensor corruptedTokens,
        ActivationCache cleanCache, Func<Tensor, double> metric, PatchingOptions? options = null,
        Tensor? attentionMask = null)
    {
        if (model.Config.KvHeads != model.Config.NHeads)
            throw new InvalidOperationException("with grouped-query attention the key/value heads differ in number " +
                "from the query heads: patch them separately (AttnHeadKAllPos, AttnHeadVAllPos)");
        return Stack([
            ("output", AttnHeadOutAllPos(model, corruptedTokens, cleanCache, metric, options, attentionMask)),
            ("query", AttnHeadQAllPos(model, corruptedTokens, cleanCache, metric, options, attentionMask)),
            ("key", AttnHeadKAllPos(model, corruptedTokens, cleanCache, metric, options, attentionMask)),
            ("value", AttnHeadVAllPos(model, corruptedTokens, cleanCache, metric, options, attentionMask)),
            ("pattern", AttnHeadPatternAllPos(model, corruptedTokens, cleanCache, metric, options, attentionMask)),
        ], "component");
    }

    static PatchingResult Stack(IReadOnlyList<(string Name, PatchingResult Result)> parts, string axis)
    {
        try
        {
            var values = torch.stack(parts.Select(p => p.Result.Values).ToArray(), 0);
            var first = parts[0].Result;
            return new PatchingResult(values, [axis, .. first.AxisNames],
                [parts.Select(p => p.Name).ToList(), .. first.AxisLabels]);
        }
        finally { foreach (var (_, r) in parts) r.Dispose(); }
    }

    static long AxisSize(HookedTransformer model, Tensor tokens, string activationName, string axis)
    {
        var cfg = model.Config;
        return axis switch
        {
            "layer" => cfg.NLayers,
            "pos" or "src_pos" or "dest_pos" => tokens.shape[^1],
            "head" or "head_index" => activationName is "k" or "v" ? cfg.KvHeads : cfg.NHeads,
            _ => throw new ArgumentException(
                $"unknown index axis '{axis}' (layer, pos, head, head_index, src_pos, dest_pos)"),
        };
    }

    static IReadOnlyList<string> Labels(string axis, long size) =>
        Enumerable.Range(0, checked((int)size))
            .Select(i => axis is "head" or "head_index"
                ? $"H{i}"
                : axis == "layer" ? $"L{i}" : i.ToString(CultureInfo.InvariantCulture)).ToList();
}
