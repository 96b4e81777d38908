namespace Lens.Pretrained;

/// <summary>
/// Qwen3 (Qwen3ForCausalLM), converted as TransformerLens's convert_qwen3_weights does: the Llama layout
/// (RMSNorm, rotate-half rotary over the whole head, SwiGLU MLP, grouped-query attention) plus an RMSNorm of
/// each head's query and key (self_attn.q_norm / k_norm → attn.q_norm.w / k_norm.w) before rotary, and no
/// biases. As TransformerLens: n_ctx 2048, keys and values as _W_K/_W_V only when grouped, no BOS by default.
/// Sliding-window layers, attention biases and rope scaling are refused, naming the key.
/// </summary>
public sealed class Qwen3Architecture : HfArchitecture
{
    public const string Qwen3 = "Qwen3ForCausalLM";

    public override IReadOnlyList<string> Names => [Qwen3];
    public override string BasePrefix => "model.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        ReadAttentionShape(cfg, hf, 4096);
        cfg.DMlp = hf.Int("intermediate_size", 22016);
        cfg.NLayers = hf.Int("num_hidden_layers", 32);
        cfg.NCtx = 2048;
        cfg.Eps = hf.Double("rms_norm_eps", 1e-6);
        cfg.DVocab = hf.Int("vocab_size", 151936);
        cfg.ActFn = hf.String("hidden_act", "silu");
        cfg.UseAttnScale = true;
        cfg.InitializerRange = hf.Double("initializer_range", 0.02);
        cfg.NormalizationType = "RMS";
        cfg.PositionalEmbeddingType = "rotary";
        // TransformerLens takes int(rope_theta).
        cfg.RotaryBase = Math.Truncate(hf.DoubleOrNull("rope_theta")
            ?? hf.Object("rope_parameters")?["rope_theta"]?.GetValue<double>() ?? 10000);
        cfg.RotaryAdjacentPairs = false;
        cfg.RotaryDim = cfg.DHead;
        cfg.TokenizerPrependsBos = true;
        cfg.FinalRms = true;
        cfg.GatedMlp = true;
        cfg.DefaultPrependBos = false;
        cfg.UseQkNorm = true;
        cfg.TieWordEmbeddings = hf.Bool("tie_word_embeddings", false);
        if (hf.Bool("attention_bias", false))
            throw new CheckpointException($"{hf.Source}: 'attention_bias' = true is not supported (TransformerLens's " +
                $"Qwen3 conversion drops biases)");
        if (hf.Bool("use_sliding_window", false))
            throw new CheckpointException($"{hf.Source}: 'use_sliding_window' = true is not supported for Qwen3 " +
                $"(TransformerLens's conversion ignores it; use false)");
        var scaling = hf.Object("rope_scaling") ?? hf.Object("rope_parameters");
        var kind = scaling?["rope_type"]?.GetValue<string>() ?? scaling?["type"]?.GetValue<string>() ?? "default";
        if (kind != "default")
            throw new CheckpointException($"{hf.Source}: rope scaling of type '{kind}' is not supported for Qwen3 " +
                $"(TransformerLens's conversion ignores it)");
        return cfg;
    }

    /// <summary>
    /// Llama's mapping plus each layer's self_attn.q_norm / k_norm → attn.q_norm.w / k_norm.w, as TransformerLens's
    /// convert_qwen3_weights differs from convert_llama_weights. Biases are refused first: Llama's mapping would load
    /// them.
    /// </summary>
    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        foreach (var name in ckpt.Names)
            if (name.EndsWith(".bias", StringComparison.Ordinal))
                throw new CheckpointException($"{ckpt.Folder}: tensor '{name}' is a bias, which Qwen3 has none of " +
                    $"(TransformerLens's conversion would drop it)");
        foreach (var weight in LlamaArchitecture.LlamaWeights(ckpt, cfg))
            yield return weight;
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string a = $"model.layers.{l}.self_attn.", b = $"blocks.{l}.";
            yield return W(b + "attn.q_norm.w", t => ckpt.Load(a + "q_norm.weight", t));
            yield return W(b + "attn.k_norm.w", t => ckpt.Load(a + "k_norm.weight", t));
        }
    }
}
