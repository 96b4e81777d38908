namespace Lens.Pretrained;

/// <summary>
/// The Llama family: LlamaForCausalLM (Llama 2/3, TinyLlama), MistralForCausalLM and
/// Qwen2ForCausalLM. RMSNorm, rotate-half rotary on the whole head, SwiGLU MLP
/// (W_gate = gate_projᵀ, W_in = up_projᵀ), grouped-query attention (k/v_proj hold
/// num_key_value_heads heads, loaded as _W_K/_W_V), no biases except Qwen2's q/k/v biases, and
/// lm_head tied to embed_tokens when the checkpoint does not store it (tie_word_embeddings).
/// </summary>
public sealed class LlamaArchitecture : HfArchitecture
{
    public const string Llama = "LlamaForCausalLM", Mistral = "MistralForCausalLM", Qwen2 = "Qwen2ForCausalLM";

    public override IReadOnlyList<string> Names => [Llama, Mistral, Qwen2];
    public override string BasePrefix => "model.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        bool qwen = architecture == Qwen2, mistral = architecture == Mistral;
        ReadAttentionShape(cfg, hf, 4096);
        cfg.DMlp = hf.Int("intermediate_size", qwen ? 22016 : mistral ? 14336 : 11008);
        cfg.NLayers = hf.Int("num_hidden_layers", 32);
        cfg.Eps = hf.Double("rms_norm_eps", 1e-6);
        cfg.DVocab = hf.Int("vocab_size", qwen ? 151936 : 32000);
        cfg.ActFn = hf.String("hidden_act", "silu");
        cfg.NormalizationType = "RMS";
        cfg.PositionalEmbeddingType = "rotary";
        cfg.RotaryAdjacentPairs = false;
        cfg.RotaryDim = cfg.DHead;
        cfg.GatedMlp = true;
        cfg.RotaryBase = hf.Double("rope_theta", 10000);
        cfg.TieWordEmbeddings = hf.Bool("tie_word_embeddings", false);
        if (qwen)
        {
            // TransformerLens caps n_ctx at 2048 and always names the K/V weights _W_K/_W_V for Qwen2.
            cfg.NCtx = 2048;
            cfg.NKeyValueHeads = cfg.KvHeads;
            cfg.UseAttnScale = true;
            cfg.InitializerRange = hf.Double("initializer_range", 0.02);
            cfg.TokenizerPrependsBos = true;
            cfg.FinalRms = true;
            cfg.DefaultPrependBos = false;
        }
        else if (mistral)
        {
            cfg.NCtx = 2048; // capped, as TransformerLens does
            cfg.NKeyValueHeads = cfg.KvHeads;
            // HF's MistralConfig default is a 4096 window; an explicit null means none.
            int? window = hf.ContainsKey("sliding_window") ? hf.IntOrNull("sliding_window") : 4096;
            cfg.UseLocalAttn = window is > 0;
            cfg.WindowSize = window;
            cfg.AttnTypes = cfg.UseLocalAttn ? Enumerable.Repeat("local", cfg.NLayers).ToArray() : null;
        }
        else
        {
            cfg.NCtx = hf.Int("max_position_embeddings", 2048);
            cfg.FinalRms = true;
        }
        ApplyRopeScaling(hf, cfg);
        return cfg;
    }

    /// <summary>
    /// Llama 3.x's rope_scaling (rope_type "llama3") becomes TransformerLens's NTK-by-parts rotary, with
    /// n_ctx capped at 2048 as TransformerLens's Llama 3 configs do; other scalings change every frequency
    /// in ways this model does not implement, so they are refused rather than computed wrongly.
    /// </summary>
    static void ApplyRopeScaling(HfConfig hf, HookedTransformerConfig cfg)
    {
        if (hf.Object("rope_scaling") is not { } scaling) return;
        var kind = scaling["rope_type"]?.GetValue<string>() ?? scaling["type"]?.GetValue<string>() ?? "default";
        if (kind == "default") return;
        if (kind != "llama3")
            throw new CheckpointException($"{hf.Source}: rope_scaling of type '{kind}' is not supported (only llama3)");
        double Get(string key) => scaling[key]?.GetValue<double>()
            ?? throw new CheckpointException($"{hf.Source}: rope_scaling (llama3) needs '{key}'");
        cfg.UseNtkByPartsRope = true;
        cfg.NtkByPartsFactor = Get("factor");
        cfg.NtkByPartsLowFreqFactor = Get("low_freq_factor");
        cfg.NtkByPartsHighFreqFactor = Get("high_freq_factor");
        cfg.NtkOriginalCtxLen = (int)Get("original_max_position_embeddings");
        cfg.NCtx = Math.Min(cfg.NCtx, 2048);
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg) =>
        LlamaWeights(ckpt, cfg);

    /// <summary>TransformerLens's convert_llama_weights, which Qwen3's conversion extends with the q/k norms.</summary>
    internal static IEnumerable<ConvertedWeight> LlamaWeights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads, kv = cfg.KvHeads;
        string g = cfg.NKeyValueHeads is null ? "" : "_";
        yield return W("embed.W_E", t => ckpt.Load("model.embed_tokens.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"model.layers.{l}.", a = h + "self_attn.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "input_layernorm.weight", t));
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "q_proj.weight", t), n));
            yield return W($"{b}attn.{g}W_K", t => InputHeads(ckpt.Load(a + "k_proj.weight", t), kv));
            yield return W($"{b}attn.{g}W_V", t => InputHeads(ckpt.Load(a + "v_proj.weight", t), kv));
            // Qwen2 (and Llama with attention_bias) store q/k/v biases; the rest have none (zeros).
            if (ckpt.Contains(a + "q_proj.bias"))
                yield return W(b + "attn.b_Q", t => BiasHeads(ckpt.Load(a + "q_proj.bias", t), n));
            if (ckpt.Contains(a + "k_proj.bias"))
                yield return W($"{b}attn.{g}b_K", t => BiasHeads(ckpt.Load(a + "k_proj.bias", t), kv));
            if (ckpt.Contains(a + "v_proj.bias"))
                yield return W($"{b}attn.{g}b_V", t => BiasHeads(ckpt.Load(a + "v_proj.bias", t), kv));
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "o_proj.weight", t), n));
            if (ckpt.Contains(a + "o_proj.bias")) yield return W(b + "attn.b_O", t => ckpt.Load(a + "o_proj.bias", t));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "post_attention_layernorm.weight", t));
            if (ckpt.Contains(h + "mlp.up_proj.bias") || ckpt.Contains(h + "mlp.gate_proj.bias"))
                throw new CheckpointException(
                    $"{ckpt.Folder}: biases on up_proj/gate_proj (mlp_bias) are not supported");
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.up_proj.weight", t).t());
            yield return W(b + "mlp.W_gate", t => ckpt.Load(h + "mlp.gate_proj.weight", t).t());
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.down_proj.weight", t).t());
            if (ckpt.Contains(h + "mlp.down_proj.bias"))
                yield return W(b + "mlp.b_out", t => ckpt.Load(h + "mlp.down_proj.bias", t));
        }
        yield return W("ln_final.w", t => ckpt.Load("model.norm.weight", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
