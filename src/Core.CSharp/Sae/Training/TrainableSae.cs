using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>
/// An SAE while it trains, as SAELens 6.18's training classes compute it: <c>StandardTrainingSAE</c>
/// (ReLU; loss = MSE + coefficient · ‖f ⊙ ‖W_dec rows‖‖_p, standard_sae.py), <c>TopKTrainingSAE</c>
/// (TopK on pre-activations scaled by the decoder norms, AuxK loss on dead latents, topk_sae.py) and
/// <c>BatchTopKTrainingSAE</c> (ReLU then the k·n largest values of the whole batch, a threshold kept as
/// a moving average of the smallest kept value, batchtopk_sae.py). MSE is Σ_d (x̂ − x)² averaged
/// over tokens (sae.py training_forward_pass). Owns its parameters.
/// </summary>
public sealed class TrainableSae : IDisposable
{
#pragma warning disable IDE1006 // SAELens's parameter names
    public Parameter W_enc { get; }
    public Parameter W_dec { get; }
    public Parameter b_enc { get; }
    public Parameter b_dec { get; }
#pragma warning restore IDE1006
    /// <summary>batchtopk: the learned threshold, in double precision as SAELens keeps it.</summary>
    public double TopkThreshold { get; private set; }
    public SaeTrainingOptions Options { get; }
    public int DIn { get; }

    public IReadOnlyList<Parameter> Parameters => [W_dec, W_enc, b_enc, b_dec];

    /// <summary>
    /// sae.py initialize_weights: b_dec = 0, W_dec kaiming-uniform [d_sae, d_in] (uniform in ±√(6/d_in)),
    /// its rows rescaled to decoder_init_norm, W_enc = W_decᵀ, b_enc = 0; drawn from <paramref name="generator"/>.
    /// </summary>
    public TrainableSae(SaeTrainingOptions options, int dIn, Generator generator)
    {
        options.Validate(dIn);
        Options = options;
        DIn = dIn;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        double bound = Math.Sqrt(6.0 / dIn);
        var wDec = rand([options.DSae, dIn], generator: generator).mul_(2 * bound).sub_(bound);
        if (options.DecoderInitNorm is double norm) wDec = wDec / wDec.norm(-1, keepdim: true) * norm;
        W_dec = new Parameter(wDec.contiguous().DetachFromDisposeScope());
        W_enc = new Parameter(wDec.t().contiguous().DetachFromDisposeScope());
        b_enc = new Parameter(zeros(options.DSae).DetachFromDisposeScope());
        b_dec = new Parameter(zeros(dIn).DetachFromDisposeScope());
    }

    /// <summary>One step's forward: feature activations, pre-activations (rescaled for topk), reconstruction and the
    /// named losses (total first).</summary>
    public sealed record StepOutput(Tensor FeatureActs, Tensor HiddenPre, Tensor SaeOut, Tensor Loss,
        IReadOnlyList<(string Name, Tensor Value)> Losses);

    /// <summary>training_forward_pass on activations [n, d_in]: the loss to differentiate, the coefficient and the
    /// dead-latent mask of this step.</summary>
    public StepOutput Forward(Tensor x, double l1Coefficient, Tensor deadMask)
    {
        var saeIn = Options.ApplyBDecToInput ? x - b_dec : x;
        var hiddenPre = saeIn.matmul(W_enc) + b_enc;
        Tensor featureActs;
        Tensor? decoderNorm = null;
        if (Options.Architecture == "standard") featureActs = nn.functional.relu(hiddenPre);
        else
        {
            if (Options.RescaleActsByDecoderNorm) { decoderNorm = W_dec.norm(-1); hiddenPre = hiddenPre * decoderNorm; }
            featureActs =
                Options.Architecture == "topk" ? TopK(hiddenPre, (int)Options.K) : BatchTopK(hiddenPre, Options.K);
        }
        var saeOut = Decode(featureActs, decoderNorm);
        var mse = (saeOut - x).pow(2).sum(-1).mean();
        var losses = new List<(string, Tensor)> { ("mse_loss", mse) };
        Tensor total;
        if (Options.Architecture == "standard")
        {
            var weighted = featureActs * W_dec.norm(1);
            var sparsity = linalg.vector_norm(weighted, Options.LpNorm, [-1L]);
            var l1 = (sparsity * l1Coefficient).mean();
            losses.Add(("l1_loss", l1));
            total = mse + l1;
        }
        else
        {
            var aux = AuxKLoss(x, saeOut, hiddenPre, deadMask, decoderNorm);
            losses.Add(("auxiliary_reconstruction_loss", aux));
            total = mse + aux;
        }
        if (Options.Architecture == "batchtopk") UpdateThreshold(featureActs);
        losses.Insert(0, ("overall_loss", total));
        return new StepOutput(featureActs, hiddenPre, saeOut, total, losses);
    }

    /// <summary>topk_sae.py TopKTrainingSAE.decode: (f · 1/‖W_dec row‖ when rescaling) @ W_dec + b_dec.</summary>
    Tensor Decode(Tensor featureActs, Tensor? decoderNorm) =>
        (decoderNorm is null ? featureActs : featureActs * decoderNorm.reciprocal()).matmul(W_dec) + b_dec;

    /// <summary>topk_sae.py TopK: the k largest per token, ReLU on the picked values, zeros elsewhere.</summary>
    static Tensor TopK(Tensor x, int k)
    {
        var (values, indices) = x.topk(k, -1, largest: true, sorted: false);
        return zeros_like(x).scatter_(-1, indices, nn.functional.relu(values));
    }

    /// <summary>batchtopk_sae.py BatchTopK: ReLU, then the int(k · tokens) largest values of the whole batch.</summary>
    static Tensor BatchTopK(Tensor x, double k)
    {
        var acts = nn.functional.relu(x);
        var flat = acts.flatten();
        long keep = (long)(k * (acts.numel() / acts.shape[^1]));
        var (values, indices) = flat.topk((int)keep, -1);
        return zeros_like(flat).scatter(-1, indices, values).reshape(acts.shape);
    }

    /// <summary>batchtopk_sae.py update_topk_threshold: threshold ← (1 − lr)·threshold + lr·(smallest positive
    /// activation), in double.</summary>
    void UpdateThreshold(Tensor featureActs)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var positive = featureActs.gt(0);
        if (!positive.any().item<bool>()) return;
        double minPositive = featureActs.masked_select(positive).min().to(ScalarType.Float64).item<double>();
        TopkThreshold = (1 - Options.TopkThresholdLr) * TopkThreshold + Options.TopkThresholdLr * minPositive;
    }

    /// <summary>
    /// topk_sae.py calculate_topk_aux_loss: the top k_aux = min(d_in/2, dead) dead latents' pre-activations
    /// (no ReLU) decode the detached residual of the live ones; scaled by min(dead/(d_in/2), 1). 0 when none is dead.
    /// </summary>
    Tensor AuxKLoss(Tensor x, Tensor saeOut, Tensor hiddenPre, Tensor deadMask, Tensor? decoderNorm)
    {
        long dead = deadMask.sum().item<long>();
        if (dead == 0) return zeros([], dtype: saeOut.dtype);
        var residual = (x - saeOut).detach();
        long kAux = DIn / 2;
        double scale = Math.Min((double)dead / kAux, 1.0);
        kAux = Math.Min(kAux, dead);
        var candidates = where(deadMask.unsqueeze(0), hiddenPre, full_like(hiddenPre, double.NegativeInfinity));
        var (values, indices) = candidates.topk((int)kAux, -1, largest: true, sorted: false);
        var auxActs = zeros_like(hiddenPre).scatter_(-1, indices, values);
        var recons = Decode(auxActs, decoderNorm);
        return (recons - residual).pow(2).sum(-1).mean() * (Options.AuxLossCoefficient * scale);
    }

    /// <summary>
    /// The inference SAE SAELens's save_inference_model writes: standard as trained; topk with
    /// rescale_acts_by_decoder_norm folds the decoder norms into W_enc and b_enc and unit-normalises
    /// W_dec (_fold_norm_topk); batchtopk does the same and becomes a jumprelu SAE whose threshold is
    /// the learned one for every latent. Copies: the trainer's parameters stay its own.
    /// </summary>
    public SparseAutoencoder ToInference(string hookName, string source)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        Tensor wEnc = W_enc.detach().clone(), bEnc = b_enc.detach().clone(), wDec = W_dec.detach().clone(),
            bDec = b_dec.detach().clone();
        bool fold = Options.Architecture != "standard" && Options.RescaleActsByDecoderNorm;
        if (fold)
        {
            var norm = wDec.norm(-1);
            bEnc = bEnc * norm;
            wDec = wDec / norm.unsqueeze(1);
            wEnc = wEnc * norm.unsqueeze(0);
        }
        var arch = Options.Architecture == "batchtopk" ? "jumprelu" : Options.Architecture;
        var state =
            new Dictionary<string, Tensor> { ["W_enc"] = wEnc, ["b_enc"] = bEnc, ["W_dec"] = wDec, ["b_dec"] = bDec };
        if (arch == "jumprelu") state["threshold"] = ones(Options.DSae) * TopkThreshold;
        foreach (var t in state.Values) t.DetachFromDisposeScope();
        var config = new SaeConfig
        {
            Architecture = arch, DIn = DIn, DSae = Options.DSae, ApplyBDecToInput = Options.ApplyBDecToInput,
            K = Options.EffectiveK ?? 100,
            RescaleActsByDecoderNorm = arch == "topk" && Options.RescaleActsByDecoderNorm, HookName = hookName,
        };
        return new SparseAutoencoder(config, state, source);
    }

    public void Dispose() { foreach (var p in Parameters) p.Dispose(); }
}
