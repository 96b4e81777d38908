using Lens.Analysis;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Pretrained;

/// <summary>Which of TransformerLens's weight-processing steps to apply (its from_pretrained defaults: all but the
/// refactor).</summary>
public sealed record WeightProcessingOptions
{
    public bool FoldLn { get; init; } = true;
    public bool CenterWritingWeights { get; init; } = true;
    public bool CenterUnembed { get; init; } = true;
    public bool FoldValueBiases { get; init; } = true;
    public bool RefactorFactoredAttnMatrices { get; init; }

    public static WeightProcessingOptions None { get; } =
        new() { FoldLn = false, CenterWritingWeights = false, CenterUnembed = false, FoldValueBiases = false };
}

/// <summary>
/// TransformerLens v3.5.1's weight processing (process_weights_ / load_and_process_state_dict) on a
/// state dict under TransformerLens's parameter names. Every step changes the tensors IN PLACE, so
/// the dictionary may hold a model's own parameters and nothing is copied; norm weights that get
/// folded are removed from the dictionary (not disposed: their owner disposes them). Each step
/// leaves the model's function unchanged (up to a per-position constant on the logits for
/// <see cref="CenterUnembed"/>, which log-softmax removes).
/// </summary>
public static class WeightProcessing
{
    /// <summary>
    /// Folds each norm's weight (and, for LayerNorm, bias) into the layer that reads its output:
    /// ln1 into W_Q/W_K/W_V (b_Q/b_K/b_V), ln2 into W_in/W_gate (b_in), the SoLU mlp.ln into W_out
    /// (b_out), ln_final into W_U (b_U), then (LayerNorm) centres the reading weights over d_model.
    /// RMSNorm has no bias and its output is not centred: use foldBiases = centerWeights = false.
    /// </summary>
    public static void FoldLayerNorm(IDictionary<string, Tensor> stateDict, HookedTransformerConfig cfg,
        bool foldBiases = true, bool centerWeights = true)
    {
        using var _ = no_grad();
        var sd = new StateDictView(stateDict, "fold_ln");
        string gqa = cfg.NKeyValueHeads is null ? "" : "_";
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string a = $"blocks.{l}.attn.", m = $"blocks.{l}.mlp.";
            string[] qkv = [a + "W_Q", a + gqa + "W_K", a + gqa + "W_V"];
            string[] qkvBias = [a + "b_Q", a + gqa + "b_K", a + gqa + "b_V"];
            // Biases first: they read the weights before the gain is multiplied in.
            if (foldBiases)
            {
                var lnB = sd[$"blocks.{l}.ln1.b"];
                for (int i = 0; i < 3; i++) AddInPlace(sd[qkvBias[i]], () => (sd[qkv[i]] * lnB.view(1, -1, 1)).sum(-2));
                sd.Remove($"blocks.{l}.ln1.b");
            }
            var lnW = sd[$"blocks.{l}.ln1.w"];
            foreach (var w in qkv) sd[w].mul_(lnW.view(1, -1, 1));
            sd.Remove($"blocks.{l}.ln1.w");
            if (centerWeights) foreach (var w in qkv) SubtractMean(sd[w], -2);

            if (cfg.AttnOnly) continue;
            if (foldBiases)
            {
                var ln2B = sd[$"blocks.{l}.ln2.b"];
                AddInPlace(sd[m + "b_in"], () => (sd[m + "W_in"] * ln2B.view(-1, 1)).sum(-2));
                sd.Remove($"blocks.{l}.ln2.b");
            }
            var ln2W = sd[$"blocks.{l}.ln2.w"];
            sd[m + "W_in"].mul_(ln2W.view(-1, 1));
            if (cfg.GatedMlp) sd[m + "W_gate"].mul_(ln2W.view(-1, 1));
            sd.Remove($"blocks.{l}.ln2.w");
            if (centerWeights) SubtractMean(sd[m + "W_in"], 0);

            if (cfg.Activation is ActivationFunction.Solu or ActivationFunction.SoluLn && sd.Contains(m + "ln.w"))
            {
                if (foldBiases)
                {
                    var lnMidB = sd[m + "ln.b"];
                    AddInPlace(sd[m + "b_out"], () => (sd[m + "W_out"] * lnMidB.view(-1, 1)).sum(-2));
                    sd.Remove(m + "ln.b");
                }
                sd[m + "W_out"].mul_(sd[m + "ln.w"].view(-1, 1));
                sd.Remove(m + "ln.w");
                if (centerWeights) SubtractMean(sd[m + "W_out"], 0);
            }
        }

        if (!sd.Contains("ln_final.w")) return; // no final norm (normalization_type None)
        if (!cfg.FinalRms && foldBiases)
        {
            var lnB = sd["ln_final.b"];
            AddInPlace(sd["unembed.b_U"], () => (sd["unembed.W_U"] * lnB.view(-1, 1)).sum(-2));
            sd.Remove("ln_final.b");
        }
        sd["unembed.W_U"].mul_(sd["ln_final.w"].view(-1, 1));
        sd.Remove("ln_final.w");
        if (centerWeights) SubtractMean(sd["unembed.W_U"], 0);
    }

    /// <summary>
    /// Centres the weights that write to the residual stream (W_E, W_pos, W_O, W_out over d_model;
    /// b_O, b_out): a LayerNorm reading the stream removes the mean anyway.
    /// </summary>
    public static void CenterWritingWeights(IDictionary<string, Tensor> stateDict, HookedTransformerConfig cfg)
    {
        using var _ = no_grad();
        var sd = new StateDictView(stateDict, "center_writing_weights");
        SubtractMean(sd["embed.W_E"], -1);
        if (cfg.PositionalEmbedding != PositionalEmbeddingKind.Rotary) SubtractMean(sd["pos_embed.W_pos"], -1);
        for (int l = 0; l < cfg.NLayers; l++)
        {
            SubtractMean(sd[$"blocks.{l}.attn.W_O"], -1);
            SubtractMean(sd[$"blocks.{l}.attn.b_O"], -1);
            if (cfg.AttnOnly) continue;
            SubtractMean(sd[$"blocks.{l}.mlp.W_out"], -1);
            SubtractMean(sd[$"blocks.{l}.mlp.b_out"], -1);
        }
    }

    /// <summary>Centres W_U and b_U over the vocabulary: logits shift by a per-position constant, log-probabilities do
    /// not change.</summary>
    public static void CenterUnembed(IDictionary<string, Tensor> stateDict)
    {
        using var _ = no_grad();
        var sd = new StateDictView(stateDict, "center_unembed");
        SubtractMean(sd["unembed.W_U"], -1);
        SubtractMean(sd["unembed.b_U"], -1);
    }

    /// <summary>
    /// Folds the value biases into the output bias: attention patterns sum to 1, so b_V's effect is
    /// the constant b_O += Σ_head b_V[h] @ W_O[h]; b_V becomes 0 (grouped heads are expanded first).
    /// </summary>
    public static void FoldValueBiases(IDictionary<string, Tensor> stateDict, HookedTransformerConfig cfg)
    {
        using var _ = no_grad();
        var sd = new StateDictView(stateDict, "fold_value_biases");
        bool gqa = cfg.NKeyValueHeads is not null;
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string a = $"blocks.{l}.attn.";
            var bV = sd[a + (gqa ? "_b_V" : "b_V")];
            var wO = sd[a + "W_O"];
            AddInPlace(sd[a + "b_O"], () =>
            {
                var perHead = gqa ? bV.repeat_interleave(cfg.NHeads / cfg.NKeyValueHeads!.Value, 0) : bV;
                return (perHead.unsqueeze(-1) * wO).sum([0L, 1L]);
            });
            bV.zero_();
        }
    }

    /// <summary>
    /// TransformerLens's experimental refactor of each head's factored matrices: W_QK = W_Q W_Kᵀ
    /// (with the biases as an extra input dimension) becomes U√S, V√S from its SVD, and
    /// W_OV = W_V W_O becomes (U S, Vᵀ), so W_O has orthonormal rows; b_V folds into b_O. The
    /// products W_Q W_Kᵀ, W_V W_O and all logits are unchanged. Not for rotary or grouped-query models.
    /// </summary>
    public static void RefactorFactoredAttnMatrices(IDictionary<string, Tensor> stateDict, HookedTransformerConfig cfg)
    {
        if (cfg.PositionalEmbedding == PositionalEmbeddingKind.Rotary)
            throw new ArgumentException("refactor_factored_attn_matrices: the QK circuit of a rotary model depends " +
                "on the positions, so it cannot be refactored");
        if (cfg.NKeyValueHeads is not null)
            throw new ArgumentException(
                "refactor_factored_attn_matrices: not defined for grouped-query attention (n_key_value_heads)");
        using var _ = no_grad();
        var sd = new StateDictView(stateDict, "refactor_factored_attn_matrices");
        for (int l = 0; l < cfg.NLayers; l++)
        {
            using var scope = NewDisposeScope();
            string a = $"blocks.{l}.attn.";
            Tensor wQ = sd[a + "W_Q"], bQ = sd[a + "b_Q"], wK = sd[a + "W_K"], bK = sd[a + "b_K"];
            var qEff = cat([wQ, bQ.unsqueeze(1)], 1);                  // [h, d+1, e]
            var kEff = cat([wK, bK.unsqueeze(1)], 1);
            using var qk = new FactoredMatrix(qEff, kEff.transpose(-1, -2));
            using var even = qk.MakeEven();                             // (U√S)(√S Vᵀ)
            var qEven = even.A;                                         // [h, d+1, e]
            var kEven = even.B.transpose(-1, -2);
            long d = wQ.shape[1];
            wQ.copy_(qEven.narrow(1, 0, d)); bQ.copy_(qEven.select(1, d));
            wK.copy_(kEven.narrow(1, 0, d)); bK.copy_(kEven.select(1, d));

            Tensor wV = sd[a + "W_V"], wO = sd[a + "W_O"], bV = sd[a + "b_V"], bO = sd[a + "b_O"];
            bO.add_((bV.unsqueeze(-1) * wO).sum([0L, 1L]));
            bV.zero_();
            using var ov = new FactoredMatrix(wV, wO);
            using var svd = ov.Svd();                                   // W_V W_O = U diag(S) Vᵀ (Vh holds V)
            wV.copy_(svd.U * svd.S.unsqueeze(-2));
            wO.copy_(svd.Vh.transpose(-1, -2));
        }
    }

    /// <summary>
    /// Applies the chosen steps in TransformerLens's order and returns the config of the processed
    /// model (normalization LN → LNPre, RMS → RMSPre when the norms were folded); the input config is not changed.
    /// </summary>
    public static HookedTransformerConfig Process(IDictionary<string, Tensor> stateDict, HookedTransformerConfig cfg,
        WeightProcessingOptions options)
    {
        var processed = cfg.Clone();
        var norm = cfg.Normalization;
        // TransformerLens skips fold_ln for mixtures of experts (the norm would have to enter every expert and the
        // router).
        if (options.FoldLn && cfg.NumExperts is null)
        {
            if (norm == NormalizationKind.LN)
            {
                FoldLayerNorm(stateDict, cfg);
                processed.Normalization = NormalizationKind.LNPre;
            }
            else if (norm == NormalizationKind.RMS)
            {
                FoldLayerNorm(stateDict, cfg, foldBiases: false, centerWeights: false);
                processed.Normalization = NormalizationKind.RMSPre;
            }
            // LNPre / RMSPre: already folded; null: nothing to fold.
        }
        bool layerNorm = norm is NormalizationKind.LN or NormalizationKind.LNPre;
        if (options.CenterWritingWeights && layerNorm && !cfg.FinalRms) CenterWritingWeights(stateDict, cfg);
        // cap·tanh(logits/cap) is not invariant under a per-position shift: TransformerLens skips centring then.
        if (options.CenterUnembed && cfg.OutputLogitsSoftCap <= 0) CenterUnembed(stateDict);
        if (options.FoldValueBiases)
        {
            FoldValueBiases(stateDict, cfg);
            // Keeps b_O exactly centred after the fold, as the reference processing does.
            if (options.CenterWritingWeights && layerNorm && !cfg.FinalRms)
                using (no_grad())
                    for (int l = 0; l < cfg.NLayers; l++) SubtractMean(stateDict[$"blocks.{l}.attn.b_O"], -1);
        }
        if (options.RefactorFactoredAttnMatrices) RefactorFactoredAttnMatrices(stateDict, cfg);
        return processed.Complete();
    }

    // ---- helpers -------------------------------------------------------------------------------

    static void SubtractMean(Tensor t, long dim)
    {
        using var mean = t.mean([dim], keepdim: true);
        t.sub_(mean);
    }

    static void AddInPlace(Tensor target, Func<Tensor> delta)
    {
        using var d = delta();
        target.add_(d);
    }

    /// <summary>Name lookup with a message that names the step and the missing tensor.</summary>
    readonly struct StateDictView(IDictionary<string, Tensor> dict, string step)
    {
        public Tensor this[string name] => dict.TryGetValue(name, out var t) ? t
            : throw new ArgumentException(
                $"{step}: the state dict has no '{name}' (is the config right for these weights?)");
        public bool Contains(string name) => dict.ContainsKey(name);
        public void Remove(string name) => dict.Remove(name);
    }
}
