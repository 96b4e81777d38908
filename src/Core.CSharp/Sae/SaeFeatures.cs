using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>One latent's value: its index and activation (or logit weight, for a token list).</summary>
public readonly record struct FeatureValue(int Feature, double Value);

/// <summary>A token and the direct effect of a decoder direction on its logit.</summary>
public readonly record struct TokenWeight(long Token, double Weight);

/// <summary>
/// Feature work on a model with SAEs: feature activations per token, the top features at a position,
/// interventions on <c>hook_sae_acts_post</c> (ablate, set, add), and a decoder direction's direct
/// logit attribution.
/// </summary>
public static partial class SaeFeatures
{
    /// <summary>
    /// <c>hook_sae_acts_post</c> [batch, pos, d_sae] for tokens, with the SAE spliced in with the error
    /// term (the model's numbers unchanged) alongside any SAEs already attached.
    /// </summary>
    public static Tensor Activations(this HookedTransformer model, SparseAutoencoder sae, Tensor tokens)
    {
        var name = sae.HookName + ".hook_sae_acts_post";
        bool attachedHere = !model.HookDict.ContainsKey(name);
        using var attached = attachedHere ? model.AttachSae(sae, useErrorTerm: true) : null;
        using var run = model.RunWithCache(tokens, ReturnType.None, n => n == name);
        return run.Cache[name].clone();
    }

    /// <summary>The k largest activations of one token's features [d_sae] (ties by lower index), largest first; only
    /// those above 0.</summary>
    public static IReadOnlyList<FeatureValue> Top(Tensor tokenFeatures, int k)
    {
        if (tokenFeatures.dim() != 1)
            throw new SaeException(
                $"top features need one token's activations [d_sae], got [{string.Join(", ", tokenFeatures.shape)}]");
        if (k <= 0) throw new SaeException($"top k must be positive, got {k}");
        using var scope = NewDisposeScope();
        var (values, indices) =
            tokenFeatures.to(ScalarType.Float64).cpu().topk(Math.Min(k, (int)tokenFeatures.shape[0]));
        var v = values.data<double>().ToArray();
        var i = indices.data<long>().ToArray();
        return [.. Enumerable.Range(0, v.Length).Where(j => v[j] > 0).Select(j => new FeatureValue((int)i[j], v[j]))];
    }

    /// <summary>A hook on <c>&lt;hook&gt;.hook_sae_acts_post</c> that sets a feature to a value at every position (0
    /// ablates it).</summary>
    public static HookSpec SetFeature(SparseAutoencoder sae, int feature, double value, long? position = null) =>
        Edit(sae, feature, position, column => column.fill_(value));

    /// <summary>A hook on <c>&lt;hook&gt;.hook_sae_acts_post</c> that adds a value to a feature at every position (or
    /// one).</summary>
    public static HookSpec AddToFeature(SparseAutoencoder sae, int feature, double value, long? position = null) =>
        Edit(sae, feature, position, column => column.add_(value));

    static HookSpec Edit(SparseAutoencoder sae, int feature, long? position, Func<Tensor, Tensor> edit)
    {
        if (feature < 0 || feature >= sae.Config.DSae)
            throw new SaeException(
                $"feature {feature} is out of range: the SAE at {sae.HookName} has d_sae {sae.Config.DSae}");
        return HookSpec.Named(sae.HookName + ".hook_sae_acts_post", (acts, _) =>
        {
            using var column = acts.select(-1, feature);
            if (position is long p)
            {
                if (p < -column.shape[^1] || p >= column.shape[^1])
                    throw new SaeException($"position {p} is out of range for {column.shape[^1]} positions");
                using var one = column.select(-1, p);
                edit(one);
            }
            else edit(column);
            return null;
        });
    }

    [GeneratedRegex(
        @"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_mid|hook_resid_post|hook_mlp_out|hook_attn_out|attn\.hook_z)$")]
    private static partial Regex ResidualWriter();

    /// <summary>
    /// The decoder direction's direct effect on the logits, W_dec[f] @ W_U (through W_O for a hook_z
    /// SAE), without the final LayerNorm: SAELens/Neuronpedia's logit weights. Refused for hook points
    /// that are not in (or written straight into) the residual stream.
    /// </summary>
    public static Tensor LogitWeights(this HookedTransformer model, SparseAutoencoder sae, int feature)
    {
        if (feature < 0 || feature >= sae.Config.DSae)
            throw new SaeException(
                $"feature {feature} is out of range: the SAE at {sae.HookName} has d_sae {sae.Config.DSae}");
        using var scope = NewDisposeScope();
        var direction = sae.W_dec[feature];
        var m = ResidualWriter().Match(sae.HookName);
        if (sae.HookName is "hook_embed" or "hook_pos_embed" || m.Success && m.Groups[2].Value != "attn.hook_z") { }
        else if (m.Success)
        {
            var wO = model.blocks[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)].attn.W_O; // [h, e, d]
            direction = einsum("he,hed->d", direction.reshape(wO.shape[0], wO.shape[1]), wO);
        }
        else
            throw new SaeException($"direct logit attribution needs an SAE on the residual stream or on a hook that " +
                $"writes into it (resid, mlp_out, attn_out, attn.hook_z); {sae.HookName} is not one");
        return direction.matmul(model.W_U).MoveToOuterDisposeScope();
    }

    /// <summary>The tokens a feature's decoder direction promotes most (largest logit weights) and suppresses most
    /// (smallest).</summary>
    public static (IReadOnlyList<TokenWeight> Promoted,
        IReadOnlyList<TokenWeight> Suppressed) TopLogitTokens(this HookedTransformer model, SparseAutoencoder sae,
        int feature, int k)
    {
        using var scope = NewDisposeScope();
        var weights = model.LogitWeights(sae, feature).to(ScalarType.Float64).cpu();
        k = Math.Min(k, (int)weights.shape[0]);
        List<TokenWeight> Pick(bool largest)
        {
            var (v, i) = weights.topk(k, largest: largest);
            var vs = v.data<double>().ToArray();
            var ix = i.data<long>().ToArray();
            return [.. vs.Select((w, j) => new TokenWeight(ix[j], w))];
        }
        return (Pick(true), Pick(false));
    }
}
