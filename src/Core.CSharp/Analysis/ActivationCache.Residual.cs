using Lens.Analysis;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Residual-stream analyses over a cache, as TransformerLens (≥ 2.18, checked against v3.5.1) computes
/// them: accumulated and decomposed residual streams, per-head and per-neuron contributions, layer
/// norm applied to a stack, logit attributions and the logit lens. Layers: null or -1 means the
/// final residual stream (the unembed's input, layer = n_layers); layer l means the input to block l.
/// Results are new tensors the caller owns.
/// </summary>
public sealed partial class ActivationCache
{
    int NLayers => Model.Config.NLayers;

    int ResolveLayer(int? layer)
    {
        if (layer is null || layer == -1) return NLayers;
        if (layer < 0 || layer > NLayers)
            throw new ArgumentOutOfRangeException(nameof(layer),
                $"layer {layer} is out of range: use 0..{NLayers} ({NLayers}, -1 or null = the final residual stream)");
        return layer.Value;
    }

    /// <summary>
    /// The residual stream as it accumulates: resid_pre of each layer up to <paramref name="layer"/>
    /// (labels <c>{l}_pre</c>), with resid_mid of earlier layers when <paramref name="inclMid"/>
    /// (<c>{l}_mid</c>), resid_mid of <paramref name="layer"/> itself when <paramref name="mlpInput"/>, and
    /// the final resid_post (<c>final_post</c>) when layer = n_layers. Shape [component, batch, pos, d_model].
    /// <para>applyLn at the final layer (the default) passes each component through the model's final
    /// norm with its own statistics and ln_final's weight and bias (TransformerLens ≥ 2.18: what the
    /// unembed would see; the logit lens); at an earlier layer it centres and divides by that layer's
    /// cached ln1 (or ln2 with mlpInput) scale.</para>
    /// </summary>
    public LabelledStack AccumulatedResid(int? layer = null, bool inclMid = false, bool applyLn = false,
        PositionSlice? posSlice = null, bool mlpInput = false)
    {
        posSlice ??= PositionSlice.All;
        int target = ResolveLayer(layer);
        if (mlpInput && target == NLayers)
            throw new ArgumentException(
                "mlpInput needs a layer below n_layers (the final residual stream has no MLP input)");
        using var scope = NewDisposeScope();
        var labels = new List<string>();
        var parts = new List<Tensor>();
        for (int l = 0; l <= target; l++)
        {
            if (l == NLayers)
            {
                parts.Add(this["resid_post", NLayers - 1]); labels.Add("final_post");
                continue;
            }
            parts.Add(this["resid_pre", l]); labels.Add($"{l}_pre");
            if ((inclMid && l < target) || (mlpInput && l == target))
            {
                parts.Add(this["resid_mid", l]); labels.Add($"{l}_mid");
            }
        }
        var stack = torch.stack(parts.Select(p => posSlice.Apply(p, -2)).ToArray(), 0);
        if (applyLn) stack = ApplyLnToStack(stack, target, mlpInput, posSlice, recomputeLn: target == NLayers);
        return new LabelledStack(stack.MoveToOuterDisposeScope(), labels);
    }

    /// <summary>
    /// The residual stream entering <paramref name="layer"/> split into what wrote it: <c>embed</c>,
    /// <c>pos_embed</c> (when cached and <paramref name="inclEmbeds"/>), then <c>{l}_attn_out</c> and
    /// <c>{l}_mlp_out</c> per earlier layer (mode "all", "attn" or "mlp"), plus the layer's own attn_out
    /// when <paramref name="mlpInput"/>. Shape [component, batch, pos, d_model]; the components sum to
    /// the residual stream. applyLn centres each component and divides by the CACHED scale of the
    /// norm that reads it (ln_final.hook_scale at the final layer): a linear map, so the parts still
    /// add up to the normalised stream before the norm's weight and bias.
    /// </summary>
    public LabelledStack DecomposeResid(int? layer = null, bool mlpInput = false, string mode = "all",
        bool applyLn = false, PositionSlice? posSlice = null, bool inclEmbeds = true)
    {
        if (mode is not ("all" or "attn" or "mlp"))
            throw new ArgumentException($"mode must be \"all\", \"attn\" or \"mlp\", not \"{mode}\"");
        posSlice ??= PositionSlice.All;
        int target = ResolveLayer(layer);
        if (mlpInput && target == NLayers)
            throw new ArgumentException(
                "mlpInput needs a layer below n_layers (the final residual stream has no MLP input)");
        bool inclAttn = mode != "mlp", inclMlp = mode != "attn" && !Model.Config.AttnOnly;
        using var scope = NewDisposeScope();
        var labels = new List<string>();
        var parts = new List<Tensor>();
        if (inclEmbeds)
        {
            if (ContainsKey("hook_embed")) { parts.Add(this["hook_embed"]); labels.Add("embed"); }
            if (ContainsKey("hook_pos_embed")) { parts.Add(this["hook_pos_embed"]); labels.Add("pos_embed"); }
        }
        for (int l = 0; l < target; l++)
        {
            if (inclAttn) { parts.Add(this["attn_out", l]); labels.Add($"{l}_attn_out"); }
            if (inclMlp) { parts.Add(this["mlp_out", l]); labels.Add($"{l}_mlp_out"); }
        }
        if (mlpInput && inclAttn) { parts.Add(this["attn_out", target]); labels.Add($"{target}_attn_out"); }
        if (parts.Count == 0)
            throw new ArgumentException($"nothing to decompose: no components up to layer {target} with mode " +
                $"\"{mode}\" and inclEmbeds = {inclEmbeds}");
        var stack = torch.stack(parts.Select(p => posSlice.Apply(p, -2)).ToArray(), 0);
        if (applyLn) stack = ApplyLnToStack(stack, target, mlpInput, posSlice);
        return new LabelledStack(stack.MoveToOuterDisposeScope(), labels);
    }

    /// <summary>
    /// Adds each layer's per-head outputs <c>blocks.{l}.attn.hook_result</c> [batch, pos, head, d_model]
    /// = z·W_O per head (no b_O; attn_out = Σ_heads result + b_O) to the cache, from the cached hook_z.
    /// Layers whose results are already cached are kept.
    /// </summary>
    public void ComputeHeadResults()
    {
        int expectedDims = HasBatchDim ? 4 : 3;
        for (int l = 0; l < NLayers; l++)
        {
            var key = $"blocks.{l}.attn.hook_result";
            if (_store.TryGetValue(key, out var cached) && cached.dim() == expectedDims
                && cached.shape[^2] == Model.Config.NHeads) continue;
            using var scope = NewDisposeScope();
            var z = this["z", l];
            var wO = Model.blocks[l].attn.W_O;
            var result = einsum("...he,hed->...hd", z.to(wO.dtype), wO).detach();
            result.DetachFromDisposeScope();
            if (_store.TryGetValue(key, out var stale)) stale.Dispose(); else _order.Add(key);
            _store[key] = result;
        }
    }

    /// <summary>
    /// Every head's output up to (not including) <paramref name="layer"/>, one component per head
    /// labelled <c>L{l}H{h}</c> [layer·n_heads, batch, pos, d_model], with a final <c>remainder</c>
    /// (the residual stream minus the heads) when <paramref name="inclRemainder"/>. Computes the
    /// head results from hook_z if the cache lacks them (<see cref="ComputeHeadResults"/>).
    /// </summary>
    public LabelledStack StackHeadResults(int layer = -1, bool inclRemainder = false, PositionSlice? posSlice = null,
        bool applyLn = false)
    {
        posSlice ??= PositionSlice.All;
        int target = ResolveLayer(layer);
        ComputeHeadResults();
        using var scope = NewDisposeScope();
        var labels = new List<string>();
        var parts = new List<Tensor>();
        for (int l = 0; l < target; l++)
        {
            parts.Add(posSlice.Apply(this["result", l], -3));
            for (int h = 0; h < Model.Config.NHeads; h++) labels.Add($"L{l}H{h}");
        }
        return ComponentStack(parts, labels, target, false, posSlice, inclRemainder, applyLn);
    }

    /// <summary>
    /// Every MLP neuron's output up to (not including) <paramref name="layer"/>: post[..., n]·W_out[n]
    /// per neuron, labelled <c>L{l}N{n}</c> [layer·neurons, batch, pos, d_model]; <paramref name="neurons"/>
    /// keeps only those neuron indices (every layer). This is d_mlp times the size of the residual
    /// stream per layer: ask for a few neurons or a position slice on large models. With
    /// <paramref name="inclRemainder"/> a final <c>remainder</c> completes the residual stream the
    /// layer's norm reads (resid_mid of <paramref name="layer"/> with mlpInput, else its resid_pre).
    /// </summary>
    public LabelledStack StackNeuronResults(int layer = -1, long[]? neurons = null, PositionSlice? posSlice = null,
        bool inclRemainder = false, bool applyLn = false, bool mlpInput = false)
    {
        posSlice ??= PositionSlice.All;
        if (Model.Config.AttnOnly)
            throw new InvalidOperationException("this model is attention-only: it has no MLP neurons");
        int target = ResolveLayer(layer);
        if (mlpInput && target == NLayers)
            throw new ArgumentException(
                "mlpInput needs a layer below n_layers (the final residual stream has no MLP input)");
        int dMlp = Model.Config.DMlp ?? throw new InvalidOperationException("the model config has no d_mlp");
        var kept = neurons ?? Enumerable.Range(0, dMlp).Select(i => (long)i).ToArray();
        foreach (var n in kept)
            if (n < 0 || n >= dMlp)
                throw new ArgumentOutOfRangeException(nameof(neurons),
                    $"neuron {n} is out of range: the MLP has {dMlp} neurons");
        using var scope = NewDisposeScope();
        var index = tensor(kept, dtype: ScalarType.Int64, device: Model.Device);
        var labels = new List<string>();
        var parts = new List<Tensor>();
        for (int l = 0; l < target; l++)
        {
            var acts = posSlice.Apply(this["post", l], -2).index_select(-1, index);
            var wOut = Model.blocks[l].mlp!.W_out.index_select(0, index);
            parts.Add(acts.unsqueeze(-1) * wOut);
            labels.AddRange(kept.Select(n => $"L{l}N{n}"));
        }
        return ComponentStack(parts, labels, target, mlpInput, posSlice, inclRemainder, applyLn);
    }

    /// <summary>
    /// What <see cref="StackHeadResults"/> and <see cref="StackNeuronResults"/> make of their parts, each
    /// [batch, pos, components, d_model] (position-sliced): one stack [components, batch, pos, d_model], with the
    /// <c>remainder</c> of the residual stream that <paramref name="layer"/>'s norm reads and that norm applied when
    /// asked. Runs in the caller's dispose scope and moves the stack out of it.
    /// </summary>
    LabelledStack ComponentStack(List<Tensor> parts, List<string> labels, int layer, bool mlpInput,
        PositionSlice posSlice, bool inclRemainder, bool applyLn)
    {
        var stack = parts.Count > 0 ? cat(parts.ToArray(), -2).movedim([-2L], [0L]) : EmptyStack(posSlice);
        if (inclRemainder)
        {
            var whole = posSlice.Apply(ResidualEntering(layer, mlpInput), -2);
            var remainder = parts.Count > 0 ? whole - stack.sum(0L) : whole;
            stack = cat([stack, remainder.unsqueeze(0)], 0);
            labels.Add("remainder");
        }
        if (applyLn) stack = ApplyLnToStack(stack, layer, mlpInput, posSlice);
        return new LabelledStack(stack.MoveToOuterDisposeScope(), labels);
    }

    /// <summary>
    /// Treats a stack [component, batch, pos, d_model] (already position-sliced by
    /// <paramref name="posSlice"/>) as the input to a layer's norm: ln1 of <paramref name="layer"/>
    /// (ln2 with <paramref name="mlpInput"/>), or ln_final at layer n_layers. By default it centres
    /// each component (LN, LNPre) and divides by the CACHED scale of that norm, so the components
    /// still add up. With <paramref name="recomputeLn"/> at the final layer, each component is passed
    /// through ln_final itself (its own statistics, weight and bias), as the logit lens needs. A model
    /// without normalisation returns the stack unchanged.
    /// </summary>
    public Tensor ApplyLnToStack(Tensor residualStack, int? layer = null, bool mlpInput = false,
        PositionSlice? posSlice = null, bool recomputeLn = false)
    {
        posSlice ??= PositionSlice.All;
        var norm = Model.Config.Normalization;
        if (norm == NormalizationKind.None) return residualStack.alias();
        int target = ResolveLayer(layer);
        if (mlpInput && target == NLayers)
            throw new ArgumentException(
                "mlpInput needs a layer below n_layers: at the final layer the norm is ln_final");
        using var scope = NewDisposeScope();
        if (recomputeLn && target == NLayers && Model.ln_final is { } lnFinal)
        {
            var results = new List<Tensor>();
            for (long i = 0; i < residualStack.shape[0]; i++)
            {
                var x = residualStack[i];
                var original = x.shape;
                if (!HasBatchDim) x = x.unsqueeze(0);
                if (x.dim() == 2) x = x.unsqueeze(1);
                results.Add(lnFinal.forward(x).reshape(original));
            }
            return torch.stack(results.ToArray(), 0).MoveToOuterDisposeScope();
        }
        var stack = norm is NormalizationKind.LN or NormalizationKind.LNPre
            ? residualStack - residualStack.mean([-1L], keepdim: true)
            : residualStack;
        var key = target == NLayers ? "ln_final.hook_scale" : $"blocks.{target}.ln{(mlpInput ? 2 : 1)}.hook_scale";
        if (!_store.TryGetValue(key, out var scale))
            throw new KeyNotFoundException($"applying layer norm to a stack needs the cached scale '{key}', which " +
                $"this cache lacks (run with a names filter that keeps it)");
        return (stack / posSlice.Apply(scale, -2)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logit attributions: how much each component of a stack [component, batch, pos, d_model]
    /// pushes the logit of <paramref name="tokens"/> (or the logit difference tokens − incorrectTokens),
    /// after the final norm's cached scale: Σ_d LN_cached(component)·W_U[:, token] (no ln_final weight
    /// or bias, no b_U). tokens [batch, pos] picks a token per example and position, [batch] one per
    /// example, a scalar one for all. Returns [component, batch, pos].
    /// </summary>
    public Tensor LogitAttrs(Tensor residualStack, Tensor tokens, Tensor? incorrectTokens = null,
        PositionSlice? posSlice = null)
    {
        using var scope = NewDisposeScope();
        var directions = ResidualDirections.OfTokens(Model, tokens);
        if (incorrectTokens is not null)
        {
            if (!tokens.shape.SequenceEqual(incorrectTokens.shape))
                throw new ArgumentException($"tokens and incorrectTokens must have the same shape: " +
                    $"[{string.Join(", ", tokens.shape)}] vs [{string.Join(", ", incorrectTokens.shape)}]");
            directions = directions - ResidualDirections.OfTokens(Model, incorrectTokens);
        }
        var scaled = ApplyLnToStack(residualStack, -1, false, posSlice);
        if (HasBatchDim && scaled.dim() == 4 && directions.dim() == 2 && directions.shape[0] == scaled.shape[1])
            directions = directions.unsqueeze(-2); // one token per example, broadcast over positions
        return (scaled * directions).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Logit attributions of one token (minus another) for every component.</summary>
    public Tensor LogitAttrs(Tensor residualStack, long token, long? incorrectToken = null,
        PositionSlice? posSlice = null)
    {
        using var t = tensor(token);
        using var i = incorrectToken is long it ? tensor(it) : null;
        return LogitAttrs(residualStack, t, i, posSlice);
    }

    /// <summary>Logit attributions of a token given as text (it must be a single token of the model's
    /// tokenizer).</summary>
    public Tensor LogitAttrs(Tensor residualStack, string token, string? incorrectToken = null,
        PositionSlice? posSlice = null) =>
        LogitAttrs(residualStack, Model.ToSingleToken(token),
            incorrectToken is null ? null : Model.ToSingleToken(incorrectToken), posSlice);

    /// <summary>
    /// The logit lens: the accumulated residual stream after each layer passed through the final norm
    /// (recomputed per component, with ln_final's weight and bias) and the unembedding, labelled as
    /// <see cref="AccumulatedResid"/> ([n_layers + 1, batch, pos, d_vocab_out]). The last entry
    /// (<c>final_post</c>) is the model's logits; <paramref name="includeBias"/> adds b_U.
    /// </summary>
    public LabelledStack LogitLens(bool includeBias = true, PositionSlice? posSlice = null)
    {
        using var accumulated = AccumulatedResid(applyLn: true, posSlice: posSlice);
        using var scope = NewDisposeScope();
        var logits = accumulated.Stack.matmul(Model.W_U);
        if (includeBias) logits = logits + Model.b_U;
        return new LabelledStack(logits.MoveToOuterDisposeScope(), accumulated.Labels);
    }

    /// <summary>The residual stream a layer's norm reads: resid_mid with mlpInput, else resid_pre (resid_post of the
    /// last layer at n_layers).</summary>
    Tensor ResidualEntering(int layer, bool mlpInput) =>
        mlpInput ? this["resid_mid", layer]
        : layer == NLayers ? this["resid_post", NLayers - 1]
        : this["resid_pre", layer];

    Tensor EmptyStack(PositionSlice posSlice)
    {
        using var shapeSource = posSlice.Apply(this["hook_embed"], -2);
        return zeros([0, .. shapeSource.shape], dtype: shapeSource.dtype, device: shapeSource.device);
    }
}
