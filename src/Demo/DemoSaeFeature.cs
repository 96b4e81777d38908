using Lens.Analysis;
using Lens.Sae;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Demo;

/// <summary>
/// The evidence that one latent of an SAE at <c>blocks.0.hook_resid_post</c> of demo-attn-only-2l is a
/// previous-token feature feeding the induction head (docs/sae.md): on repeated random tokens its activation
/// is explained by the previous token's identity and not by the current one's (η², the between-group share of
/// its variance); its decoder direction lies in the previous-token head's output space (W_O's row space) and
/// is read by the induction head's keys (K-composition against a random direction's); and zeroing it (SAE
/// spliced with its error term) lowers the induction head's attention to exactly the keys where it fires.
/// </summary>
public sealed record DemoSaeFeature(
    int Feature, double Density,
    double EtaPrevious, double EtaCurrent, double EtaChance,
    int PreviousTokenHead, double DecoderInHeadOutput, double HeadOutputShareOfRandom,
    int InductionHead, double KCompositionVsRandom,
    int FiringKeys, double InductionAttentionAtFiringKeys, double InductionAttentionAtFiringKeysAblated,
    double InductionAttentionElsewhere, double InductionAttentionElsewhereAblated,
    double LossAtFiringQueries, double LossAtFiringQueriesAblated)
{
    const string Hook = "blocks.0.hook_resid_post";

    /// <summary>η² of each latent's activation grouped by an id: Σ_g n_g (mean_g − mean)² / Σ (a − mean)², for acts [n,
    /// d_sae] and groups [n] in [0, nGroups).</summary>
    public static Tensor EtaSquared(Tensor acts, Tensor groups, long nGroups)
    {
        using var scope = NewDisposeScope();
        var a = acts.to(ScalarType.Float64);
        var mean = a.mean([0]);
        var total = (a - mean).pow(2).sum([0]);
        var sums = zeros(nGroups, a.shape[1], dtype: ScalarType.Float64).index_add(0, groups, a, 1.0);
        var counts = zeros(nGroups, dtype: ScalarType.Float64)
            .index_add(0, groups, ones(a.shape[0], dtype: ScalarType.Float64), 1.0);
        var means = sums / counts.clamp_min(1).unsqueeze(1);
        var between = (counts.unsqueeze(1) * (means - mean).pow(2)).sum([0]);
        return (between / total.clamp_min(1e-30)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Picks the latent whose activation the previous token explains most beyond the current token
    /// (largest η²(previous) − η²(current) among latents firing on at least 1 % of positions) over 128 rows of
    /// BOS + 50 random ids twice (seed 7), and measures the evidence; the ablation runs on 32 other rows (seed 0).
    /// </summary>
    public static DemoSaeFeature Find(HookedTransformer model, SparseAutoencoder sae, int previousTokenHead = 2,
        int inductionHead = 1)
    {
        if (sae.HookName != Hook)
            throw new SaeException(
                $"{sae.Source}: the demo's feature evidence is for an SAE at {Hook} (this one is at {sae.HookName})");
        if (model.Config.RandomTokenRange is not [var low, var high])
            throw new ArgumentException("the model records no random-token range (lens_random_token_range)");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        const int n = 50;
        using var big = RepeatedTokens.ForModel(model, n, 2, 128, 7);
        Tensor f;
        using (var run = model.RunWithCache(big.Tokens, ReturnType.None, name => name == Hook, stopAtLayer: 1))
            f = sae.Encode(run.Cache[Hook]);
        long width = big.Tokens.shape[1], dSae = sae.Config.DSae, groups = high - low;
        // positions 2.. have a real previous token (position 1's is BOS)
        var acts = f.narrow(1, 2, width - 2).reshape(-1, dSae);
        var current = big.Tokens.narrow(1, 2, width - 2).reshape(-1) - low;
        var previous = big.Tokens.narrow(1, 1, width - 2).reshape(-1) - low;
        var etaPrev = EtaSquared(acts, previous, groups);
        var etaCur = EtaSquared(acts, current, groups);
        var density = acts.gt(0).to(ScalarType.Float64).mean([0]);
        var score = (etaPrev - etaCur).masked_fill(density.lt(0.01), double.NegativeInfinity);
        int feature = (int)score.argmax().item<long>();

        var direction = sae.W_dec[feature] / sae.W_dec[feature].norm();
        var (q, _) = linalg.qr(model.blocks[0].attn.W_O[previousTokenHead].t());
        double inHead = direction.matmul(q).pow(2).sum().item<float>();
        double randomShare = (double)q.shape[1] / q.shape[0];
        var wK = model.blocks[1].attn.W_K![inductionHead];
        double kComposition = (direction.matmul(wK).norm() / (wK.norm() / Math.Sqrt(wK.shape[0]))).item<float>();

        using var rep = RepeatedTokens.ForModel(model, n, 2, 32, 0);
        var (pattern0, acts0, loss0) = Spliced(model, sae, rep.Tokens, null);
        var (pattern1, _, loss1) = Spliced(model, sae, rep.Tokens, feature);
        // key k in the first copy (2..n) is attended from query k + n − 1 in the second copy
        var keys = arange(2, n + 1);
        var queries = keys + (n - 1);
        Tensor Attention(Tensor p) =>
            p.index_select(2, queries).index_select(3, keys).select(1, inductionHead).diagonal(0, 1, 2);
        var fires = acts0.index_select(1, keys).select(2, feature).gt(0);
        double Mean(Tensor t, Tensor mask) => t.masked_select(mask).to(ScalarType.Float64).mean().item<double>();
        var lossAtQueries0 = loss0.index_select(1, queries);
        var lossAtQueries1 = loss1.index_select(1, queries);
        return new DemoSaeFeature(feature, density[feature].item<double>(),
            etaPrev[feature].item<double>(), etaCur[feature].item<double>(), (double)(groups - 1) / (acts.shape[0] - 1),
            previousTokenHead, inHead, randomShare, inductionHead, kComposition,
            (int)fires.sum().item<long>(), Mean(Attention(pattern0), fires), Mean(Attention(pattern1), fires),
            Mean(Attention(pattern0), fires.logical_not()), Mean(Attention(pattern1), fires.logical_not()),
            Mean(lossAtQueries0, fires), Mean(lossAtQueries1, fires));
    }

    /// <summary>Layer 1's pattern, the SAE's feature activations and the per-token loss with the SAE spliced in with
    /// its error term (and the feature zeroed, if given).</summary>
    static (Tensor Pattern, Tensor Features, Tensor Loss) Spliced(HookedTransformer model, SparseAutoencoder sae,
        Tensor tokens, int? zeroFeature)
    {
        using var attached = model.AttachSae(sae, useErrorTerm: true);
        using var hooks = model.Hooks(zeroFeature is int z ? [SaeFeatures.SetFeature(sae, z, 0)] : []);
        var post = $"{Hook}.hook_sae_acts_post";
        using var run = model.RunWithCache(tokens, ReturnType.Loss,
            name => name is "blocks.1.attn.hook_pattern" || name == post, lossPerToken: true);
        return (run.Cache["blocks.1.attn.hook_pattern"].clone(), run.Cache[post].clone(), run.Loss.clone());
    }
}
