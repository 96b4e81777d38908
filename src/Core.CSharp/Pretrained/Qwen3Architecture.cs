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
        cfg.RotaryBase = Math.Truncate(hf.DoubleOrNull("rope_theta") ?? hf.Object("rope_parameters")?["rope_theta"]?.GetValue<double>() ?? 10000);
        cfg.RotaryAdjacentPairs = false;
        cfg.RotaryDim = cfg.DHead;
        cfg.TokenizerPrependsBos = true;
        cfg.FinalRms = true;
        cfg.GatedMlp = true;
        cfg.DefaultPrependBos = false;
        cfg.UseQkNorm = true;
        cfg.TieWordEmbeddings = hf.Bool("tie_word_embeddings", false);
        if (hf.Bool("attention_bias", false))
            throw new CheckpointException($"{hf.Source}: 'attention_bias' = true is not supported (TransformerLens's Qwen3 conversion drops biases)");
        if (hf.Bool("use_sliding_window", false))
            throw new CheckpointException($"{hf.Source}: 'use_sliding_window' = true is not supported for Qwen3 (TransformerLens's conversion ignores it; use false)");
        var scaling = hf.Object("rope_scaling") ?? hf.Object("rope_parameters");
        var kind = scaling?["rope_type"]?.GetValue<string>() ?? scaling?["type"]?.GetValue<string>() ?? "default";
        if (kind != "default")
            throw new CheckpointException($"{hf.Source}: rope scaling of type '{kind}' is not supported for Qwen3 (TransformerLens's conversion ignores it)");
        return cfg;
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads, kv = cfg.KvHeads;
        string g = cfg.NKeyValueHeads is null ? "" : "_";
        foreach (var name in ckpt.Names)
            if (name.EndsWith(".bias", StringComparison.Ordinal))
                throw new CheckpointException($"{ckpt.Folder}: tensor '{name}' is a bias, which Qwen3 has none of (TransformerLens's conversion would drop it)");
        yield return W("embed.W_E", t => ckpt.Load("model.embed_tokens.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"model.layers.{l}.", a = h + "self_attn.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "input_layernorm.weight", t));
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "q_proj.weight", t), n));
            yield return W($"{b}attn.{g}W_K", t => InputHeads(ckpt.Load(a + "k_proj.weight", t), kv));
            yield return W($"{b}attn.{g}W_V", t => InputHeads(ckpt.Load(a + "v_proj.weight", t), kv));
            yield return W(b + "attn.q_norm.w", t => ckpt.Load(a + "q_norm.weight", t));
            yield return W(b + "attn.k_norm.w", t => ckpt.Load(a + "k_norm.weight", t));
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "o_proj.weight", t), n));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "post_attention_layernorm.weight", t));
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.up_proj.weight", t).t());
            yield return W(b + "mlp.W_gate", t => ckpt.Load(h + "mlp.gate_proj.weight", t).t());
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.down_proj.weight", t).t());
        }
        yield return W("ln_final.w", t => ckpt.Load("model.norm.weight", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
