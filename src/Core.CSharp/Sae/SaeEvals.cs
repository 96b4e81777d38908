using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// SAELens's <c>run_evals</c> (evals.py 118-755) for one SAE on a model over token batches: the
/// sparsity and variance metrics on the activations at the SAE's hook, and the CE-loss and KL metrics
/// of three runs (clean, the activation replaced by decode(encode(act)), and replaced by zeros).
/// Batches aggregate as SAELens aggregates them: per-token values are pooled, SAELens's explained
/// variance takes means of per-batch means, and its "mse" divides by each batch's token count.
/// The ignored tokens are SAELens's <c>exclude_special_tokens</c>: those positions are left
/// out of every metric and keep their activation in the spliced run (SAELens excludes the tokenizer's
/// special tokens by default; Lens excludes only what it is given).
/// </summary>
public static class SaeEvals
{
    static readonly string[] HeadHooks = ["hook_q", "hook_k", "hook_v", "hook_z"];

    public static SaeMetrics Run(HookedTransformer model, SparseAutoencoder sae, IEnumerable<Tensor> batches,
        IReadOnlyCollection<long>? ignoreTokens = null, double denseThreshold = 0.1)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var perToken = new Dictionary<string, List<Tensor>>();
        void Add(string name, Tensor t)
        {
            if (!perToken.TryGetValue(name, out var l)) perToken[name] = l = [];
            l.Add(t);
        }
        var meanSumOfSquares = new List<Tensor>();
        var meanActPerDimension = new List<Tensor>();
        var meanResidSquares = new List<Tensor>();
        Tensor? sumX = null;
        double sumSquares = 0, sumResid = 0;
        long tokens = 0;
        Tensor totalFeatureActs = zeros(sae.Config.DSae, dtype: ScalarType.Float64);
        bool headHook = HeadHooks.Any(sae.HookName.Contains);
        int nBatches = 0;
        foreach (var batchIn in batches)
        {
            nBatches++;
            var batch = batchIn.dim() == 1 ? batchIn.unsqueeze(0) : batchIn;
            var mask = ones_like(batch, dtype: ScalarType.Bool);
            foreach (var t in ignoreTokens ?? []) mask = mask.logical_and(batch.ne(t));
            var flatMask = mask.flatten();

            // ---- sparsity and variance (get_sparsity_and_variance_metrics, evals.py 440-598)
            using var cached = model.RunWithCache(batch, ReturnType.None, n => n == sae.HookName);
            var act = cached.Cache[sae.HookName];
            var features = sae.Encode(act);
            var output = sae.Decode(features, act);
            if (headHook && sae.Config.HookZ) output = output.flatten(-2, -1);
            var input = headHook ? act.flatten(-2, -1) : act;
            var x = input.flatten(0, 1)[flatMask];
            var f = features.flatten(0, 1)[flatMask];
            var xHat = output.flatten(0, 1)[flatMask];
            var l2In = x.norm(-1);
            var l2Out = xHat.norm(-1);
            var l2InForDiv = where(l2In.abs().lt(1e-4), ones_like(l2In), l2In);
            Add("l2_norm_in", l2In); Add("l2_norm_out", l2Out); Add("l2_ratio", l2Out / l2InForDiv);
            Add("relative_reconstruction_bias", (xHat.norm(-1).pow(2).mean() / (x * xHat).sum(-1).mean()).unsqueeze(0));
            Add("l0", f.gt(0).sum(-1).to(ScalarType.Float32)); Add("l1", f.sum(-1));
            var resid = (x - xHat).pow(2).sum(-1);
            Add("mse", resid / flatMask.sum());
            Add("explained_variance_legacy", (resid / (x - x.mean([0])).pow(2).sum(-1)).neg().add(1));
            meanSumOfSquares.Add(x.pow(2).sum(-1).mean([0]));
            meanActPerDimension.Add(x.pow(2).mean([0]));
            meanResidSquares.Add(resid.mean([0]));
            Add("cossim", (x / x.norm(-1, keepdim: true) * (xHat / xHat.norm(-1, keepdim: true))).sum(-1));
            var masked = features * mask.unsqueeze(-1);
            totalFeatureActs += masked.gt(0).to(ScalarType.Float64).sum(1).sum(0L);
            tokens += flatMask.sum().item<long>();
            var x64 = x.to(ScalarType.Float64);
            sumX = sumX is null ? x64.sum(0L) : sumX + x64.sum(0L);
            sumSquares += x64.pow(2).sum().item<double>();
            sumResid += resid.to(ScalarType.Float64).sum().item<double>();

            // ---- CE loss and KL (get_recons_loss, evals.py 600-755)
            using var clean = model.Forward(batch, ReturnType.Both, lossPerToken: true);
            HookFunction replace = headHook
                ? (a, _) => sae.Forward(a).to(a.dtype).reshape(a.shape)
                : (a, _) => where(mask.unsqueeze(-1), sae.Forward(a).to(a.dtype), a);
            using var spliced =
                model.RunWithHooks(batch, [HookSpec.Named(sae.HookName, replace)], ReturnType.Both, lossPerToken: true);
            using var ablated = model.RunWithHooks(batch, [HookSpec.Named(sae.HookName, (a, _) => zeros_like(a))],
                ReturnType.Both, lossPerToken: true);
            var lossMask = mask.narrow(1, 0, mask.shape[1] - 1);
            Add("kl_div_with_sae", Kl(clean.Logits!, spliced.Logits!)[mask]);
            Add("kl_div_with_ablation", Kl(clean.Logits!, ablated.Logits!)[mask]);
            Add("ce_loss_with_sae", spliced.Loss![lossMask]);
            Add("ce_loss_without_sae", clean.Loss![lossMask]);
            Add("ce_loss_with_ablation", ablated.Loss![lossMask]);
        }
        if (nBatches == 0) throw new SaeException("SAE evaluation needs at least one batch of tokens");
        if (tokens == 0) throw new SaeException("SAE evaluation: every token is excluded (ignoreTokens)");
        // SAELens means the pooled values in their own dtype (float32) and reads the result with .item().
        double Mean(string name) => cat(perToken[name]).mean().to(ScalarType.Float64).item<double>();
        var totalVariance = stack(meanSumOfSquares).mean([0]) - cat(meanActPerDimension).mean([0]).pow(2);
        var explained = (stack(meanResidSquares).mean([0]) / totalVariance).neg().add(1).item<float>();
        double centredVariance = sumSquares - sumX!.pow(2).sum().item<double>() / tokens;
        var density = (totalFeatureActs / tokens).data<double>().ToArray();
        double klSae = Mean("kl_div_with_sae"), klAbl = Mean("kl_div_with_ablation");
        double ceSae = Mean("ce_loss_with_sae"), ceClean = Mean("ce_loss_without_sae"),
            ceAbl = Mean("ce_loss_with_ablation");
        double l0 = Mean("l0");
        return new SaeMetrics
        {
            L0 = l0, L1 = Mean("l1"), Mse = Mean("mse"), ExplainedVariance = explained,
            ExplainedVarianceLegacy = Mean("explained_variance_legacy"),
            ExplainedVarianceCentred = 1 - sumResid / centredVariance, MseLoss = sumResid / tokens,
            Cossim = Mean("cossim"), L2NormIn = Mean("l2_norm_in"), L2NormOut = Mean("l2_norm_out"),
            L2Ratio = Mean("l2_ratio"), RelativeReconstructionBias = Mean("relative_reconstruction_bias"),
            CeLossWithoutSae = ceClean, CeLossWithSae = ceSae, CeLossWithAblation = ceAbl,
            CeLossScore = (ceAbl - ceSae) / (ceAbl - ceClean),
            KlDivWithSae = klSae, KlDivWithAblation = klAbl, KlDivScore = (klAbl - klSae) / klAbl,
            FiringFraction = l0 / sae.Config.DSae, FeatureDensity = density, DenseThreshold = denseThreshold,
            Tokens = (int)tokens,
        };
    }

    /// <summary>KL(original ‖ new) per position, as torch's kl_div(log_softmax(new), softmax(original)).sum(-1)
    /// (evals.py 746-755).</summary>
    public static Tensor Kl(Tensor originalLogits, Tensor newLogits)
    {
        using var scope = NewDisposeScope();
        var logNew = newLogits.log_softmax(-1);
        var probs = originalLogits.softmax(-1);
        return (probs.xlogy(probs) - probs * logNew).sum(-1).MoveToOuterDisposeScope();
    }
}
