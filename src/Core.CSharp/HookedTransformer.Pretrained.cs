using Lens.Components;
using Lens.Pretrained;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Pretrained models (TransformerLens's from_pretrained) and weight processing (process_weights_).
/// </summary>
public sealed partial class HookedTransformer
{
    /// <summary>
    /// Loads a model by name as <see cref="ModelLoader.Load"/> resolves it: a known name or alias
    /// (<see cref="OfficialModels"/>), a hub id, a hub-layout folder, a TransformerLens-native folder
    /// or a llama2.c .bin. Hub-layout and hub models get TransformerLens's default weight processing
    /// (fold_ln, center_writing_weights, center_unembed, fold_value_biases) unless
    /// <see cref="LoadOptions.ProcessWeights"/> is false; so do llama2.c files. A TransformerLens-native
    /// folder loads as it was saved. Loaded models carry their checkpoint's tokenizer.
    /// </summary>
    public static HookedTransformer FromPretrained(string name, LoadOptions? options = null) =>
        ModelLoader.Load(name, options ?? new LoadOptions());

    /// <summary>As <see cref="FromPretrained"/> with no weight processing: the checkpoint's own weights,
    /// converted.</summary>
    public static HookedTransformer FromPretrainedNoProcessing(string name, LoadOptions? options = null) =>
        ModelLoader.Load(name, (options ?? new LoadOptions()) with { ProcessWeights = false });

    /// <summary>
    /// TransformerLens's process_weights_, in place: folds the norms into the weights that read them
    /// (the norms become LNPre / RMSPre and lose their parameters and hooks are re-created), centres
    /// the weights writing to the residual stream (LayerNorm models), centres the unembedding, folds
    /// the value biases into b_O, and optionally refactors the factored attention matrices.
    /// Log-probabilities do not change; logits shift by a per-position constant (center_unembed).
    /// </summary>
    public void ProcessWeights(bool foldLn = true, bool centerWritingWeights = true, bool centerUnembed = true,
        bool foldValueBiases = true, bool refactorFactoredAttnMatrices = false) =>
        ProcessWeights(new WeightProcessingOptions
        {
            FoldLn = foldLn, CenterWritingWeights = centerWritingWeights, CenterUnembed = centerUnembed,
            FoldValueBiases = foldValueBiases, RefactorFactoredAttnMatrices = refactorFactoredAttnMatrices,
        });

    public void ProcessWeights(WeightProcessingOptions options)
    {
        var stateDict = named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var processed = WeightProcessing.Process(stateDict, Config, options);
        if (processed.Normalization != Config.Normalization)
        {
            Config.Normalization = processed.Normalization;
            UseFoldedNorms();
        }
    }

    /// <summary>TransformerLens's choice of final norm: final_rms turns LN into RMS and LNPre into RMSPre.</summary>
    internal static NormalizationKind FinalNormalizationKind(HookedTransformerConfig cfg) => cfg.Normalization switch
    {
        NormalizationKind.LN => cfg.FinalRms ? NormalizationKind.RMS : NormalizationKind.LN,
        NormalizationKind.LNPre => cfg.FinalRms ? NormalizationKind.RMSPre : NormalizationKind.LNPre,
        var kind => kind,
    };

    /// <summary>Replaces every norm by its weightless Pre variant after folding (the model's function is in the folded
    /// weights).</summary>
    void UseFoldedNorms()
    {
        var kind = Config.Normalization;
        var dtype = Dtype;
        for (int l = 0; l < blocks.Count; l++)
        {
            var b = blocks[l];
            var block = _hooks.Under($"blocks.{l}");
            if (b.ln1 is not null)
                b.ln1 = Replace(b, "ln1", b.ln1,
                    new Normalization(block.Replacing("ln1"), kind, Config.DModel, Config.Eps, dtype));
            if (b.ln2 is not null)
                b.ln2 = Replace(b, "ln2", b.ln2,
                    new Normalization(block.Replacing("ln2"), kind, Config.DModel, Config.Eps, dtype));
            // SoLU-LN: its mid-MLP LayerNorm was folded into W_out
            if (b.mlp?.ln is { Kind: NormalizationKind.LN } mid && kind == NormalizationKind.LNPre)
                b.mlp.ln = Replace(b.mlp, "ln", mid,
                    new Normalization(block.Under("mlp").Replacing("ln"), NormalizationKind.LNPre, Config.DMlp!.Value,
                    Config.Eps, dtype));
        }
        if (ln_final is not null && FinalNormalizationKind(Config) is var final && final != NormalizationKind.None)
            ln_final = Replace(this, "ln_final", ln_final,
                new Normalization(_hooks.Replacing("ln_final"), final, Config.DModel, Config.Eps, dtype));
        // The new norms' hook points took the places of the old ones; hook points registered from outside are dropped.
        _hookDict.Clear();
        foreach (var h in _hooks.Ordered) _hookDict.Add(h.Name, h);
    }

    static Normalization Replace(nn.Module owner, string field, Normalization old, Normalization fresh)
    {
        owner.register_module(field, null!);
        owner.register_module(field, fresh);
        old.Dispose();
        return fresh;
    }

    /// <summary>
    /// Builds a model from a converted config and fills its parameters one converted tensor at a
    /// time (the checkpoint stays memory-mapped; nothing is held twice), then applies the load
    /// options: weight processing (in float32 for half-precision targets), dtype, device.
    /// </summary>
    internal static HookedTransformer FromConverted(HookedTransformerConfig cfg, IEnumerable<ConvertedWeight> weights,
        string source, LoadOptions options)
    {
        var target = options.Dtype ?? ScalarType.Float32;
        // Folding and centring in half precision loses digits: process in float32 and convert after.
        var loadType =
            options.ProcessWeights && target is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : target;
        cfg.Dtype = NameOf(loadType);
        cfg.InitWeights = false;
        var model = new HookedTransformer(cfg);
        try
        {
            model.LoadStateDict(weights.Select(w => new KeyValuePair<string, Func<ScalarType, Tensor>>(w.Name, w.Load)),
                source);
            if (options.ProcessWeights) model.ProcessWeights();
            if (loadType != target) model.To(dtype: target);
            if (options.Device is not null) model.To(options.Device);
            return model;
        }
        catch { model.Dispose(); throw; }
    }
}
