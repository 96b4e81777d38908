using System.Text.Json;

namespace Lens;

/// <summary>What Lens does with one field of TransformerLens's HookedTransformerConfig.</summary>
public enum ConfigFieldStatus
{
    /// <summary>Lens computes what TransformerLens computes for every value it accepts.</summary>
    Implemented,
    /// <summary>Accepted only at TransformerLens's default; any other value is refused at load.</summary>
    Refused,
    /// <summary>Kept and written back, but it changes no number Lens or TransformerLens's HookedTransformer
    /// computes.</summary>
    Metadata,
}

/// <summary>One field: its name, status, TransformerLens's default (JSON), and what to use instead when
/// refused.</summary>
public sealed record ConfigField(string Name, ConfigFieldStatus Status, string Default, string Note);

/// <summary>
/// Every field of TransformerLens v3.5.1's <c>HookedTransformerConfig.to_dict()</c> (79 fields) and what
/// Lens does with it, so that a config.json is either computed exactly or refused with a message naming
/// the field, its value and the nearest supported alternative (docs/config-fields.md renders this table).
/// </summary>
public static class ConfigFields
{
    const ConfigFieldStatus I = ConfigFieldStatus.Implemented, R = ConfigFieldStatus.Refused,
        M = ConfigFieldStatus.Metadata;

    public static readonly IReadOnlyList<ConfigField> All =
    [
        new("d_model", I, "null", "residual width"),
        new("d_head", I, "null", "head width"),
        new("n_layers", I, "null", "number of blocks"),
        new("n_ctx", I, "null", "context length"),
        new("n_heads", I, "-1", "-1 means d_model / d_head"),
        new("d_mlp", I, "null", "null means 4 d_model"),
        new("d_vocab", I, "-1", "vocabulary size"),
        new("device", M, "null", "where TransformerLens ran; Lens takes the device from --device / To()"),
        new("use_attn_result", I, "false", "enables hook_result"),
        new("use_split_qkv_input", I, "false", "enables hook_q_input, hook_k_input, hook_v_input"),
        new("default_prepend_bos", I, "true", "BOS on text inputs"),
        new("positional_embedding_type", I, "\"standard\"",
            "standard, rotary, shortformer; alibi is refused (use standard or rotary)"),
        new("n_key_value_heads", I, "null", "grouped-query attention"),
        new("attn_only", I, "false", "no MLPs"),
        new("gated_mlp", I, "false", "W_gate"),
        new("uses_rms_norm", I, "false", "derived from normalization_type"),
        new("eps", I, "1e-05", "normalization epsilon"),
        new("layer_norm_folding", M, "false",
            "a record that weights were folded; the folded weights are what is computed"),
        new("act_fn", I, "\"relu\"", "relu, gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, silu, solu, solu_ln"),
        new("normalization_type", I, "\"LN\"", "LN, LNPre, RMS, RMSPre or null"),
        new("num_experts", I, "null", "mixture of experts (Mixtral): gated SiLU experts with a linear router"),
        new("experts_per_token", I, "null", "top-k experts per token"),
        new("final_rms", I, "false", "ln_final is RMS"),
        new("dtype", I, "\"float32\"", "float32, float16, bfloat16, float64"),
        new("model_name", M, "\"custom\"", "a label"),
        new("use_attn_scale", I, "true", "divide scores by attn_scale"),
        new("attn_scale", I, "-1.0", "-1 means sqrt(d_head)"),
        new("use_hook_mlp_in", I, "false", "enables hook_mlp_in"),
        new("use_attn_in", I, "false", "enables hook_attn_in"),
        new("use_qk_norm", I, "false",
            "RMSNorm of each head's query and key (attn.q_norm, attn.k_norm) before rotary (Qwen3, Gemma 3)"),
        new("use_local_attn", I, "false", "local windows per attn_types"),
        new("ungroup_grouped_query_attention", R, "false", "use false: hook_k and hook_v keep n_key_value_heads heads"),
        new("original_architecture", I, "null",
            "OlmoeForCausalLM: q/k RMSNorm over the whole projection, as TransformerLens's attention; " +
            "Olmo2/Olmo3ForCausalLM refused; otherwise a label"), new("from_checkpoint", M, "false", "a label"),
        new("checkpoint_index", M, "null", "a label"),
        new("checkpoint_label_type", M, "null", "a label"),
        new("checkpoint_value", M, "null", "a label"),
        new("tokenizer_name", I, "null", "which tokenizer Lens loads (and its BOS/EOS/pad)"),
        new("window_size", I, "null", "local attention window"),
        new("attn_types", I, "null", "\"global\"/\"local\" per layer"),
        new("init_mode", I, "\"gpt2\"",
            "gpt2 initialisation; other modes are refused when init_weights is true (load weights instead)"),
        new("n_devices", R, "1", "Lens runs a model on one device; use 1 and choose the device with --device"),
        new("attention_dir", I, "\"causal\"", "causal or bidirectional"),
        new("seed", I, "null", "initialisation seed"),
        new("initializer_range", I, "-1.0", "-1 means 0.8 / sqrt(d_model)"),
        new("init_weights", I, "true", "initialise fresh weights"),
        new("scale_attn_by_inverse_layer_idx", I, "false", "attn_scale times (layer + 1)"),
        new("d_vocab_out", I, "-1", "-1 means d_vocab"),
        new("parallel_attn_mlp", I, "false", "GPT-J / NeoX blocks"),
        new("rotary_dim", I, "null", "null means d_head for rotary"),
        new("n_params", M, "null", "recomputed on load as TransformerLens does (attention and MLP weight matrices)"),
        new("use_hook_tokens", I, "false", "enables hook_tokens"),
        new("tokenizer_prepends_bos", M, "null",
            "what the tokenizer would do; Lens adds BOS itself per default_prepend_bos"),
        new("post_embedding_ln", R, "false", "a LayerNorm after the embedding is not implemented; use false"),
        new("rotary_base", I, "10000", "rotary frequency base"),
        new("rotary_base_local", I, "null", "rotary base of local layers (Gemma 3); null means rotary_base everywhere"),
        new("rotary_scaling_factor", I, "1.0",
            "linear rotary scaling of global layers (frequencies divided by it; Gemma 3 4B+)"),
        new("trust_remote_code", M, "false", "a Hugging Face loading option"),
        new("rotary_adjacent_pairs", I, "false", "GPT-J style rotary pairs"),
        new("load_in_4bit", R, "false",
            "4-bit quantised weights are not implemented; use false (float32/float16/bfloat16 weights)"),
        new("relative_attention_max_distance", R, "null",
            "T5-style relative attention is not implemented; use null with positional_embedding_type standard or " +
            "rotary"),
        new("relative_attention_num_buckets", R, "null",
            "T5-style relative attention is not implemented; use null with positional_embedding_type standard or " +
            "rotary"), new("decoder_start_token_id", M, "null", "read only by encoder-decoder models"),
        new("tie_word_embeddings", M, "false",
            "read only by TransformerLens's encoder-decoder; the loaded W_U is what is computed"),
        new("use_normalization_before_and_after", I, "false",
            "RMSNorm after attention and MLP too (ln1_post, ln2_post; Gemma 2/3); RMS or RMSPre only"),
        new("attn_scores_soft_cap", I, "-1.0", "cap·tanh(scores/cap) before masking when > 0"),
        new("output_logits_soft_cap", I, "-1.0", "cap·tanh(logits/cap) after unembed.hook_out when > 0"),
        new("use_NTK_by_parts_rope", I, "false", "Llama 3 rotary scaling"),
        new("NTK_by_parts_low_freq_factor", I, "1.0", "Llama 3 rotary scaling"),
        new("NTK_by_parts_high_freq_factor", I, "4.0", "Llama 3 rotary scaling"),
        new("NTK_by_parts_factor", I, "8.0", "Llama 3 rotary scaling"),
        new("NTK_original_ctx_len", I, "8192", "Llama 3 rotary scaling"),
        new("use_yarn_rope", R, "false",
            "YaRN rotary scaling is not implemented; use false (or use_NTK_by_parts_rope for Llama 3 scaling)"),
        new("yarn_factor", M, "1.0", "read only with use_yarn_rope, which is refused"),
        new("yarn_attention_factor", M, "1.0", "read only with use_yarn_rope, which is refused"),
        new("yarn_beta_fast", M, "32.0", "read only with use_yarn_rope, which is refused"),
        new("yarn_beta_slow", M, "1.0", "read only with use_yarn_rope, which is refused"),
        new("yarn_original_max_position_embeddings", M, "4096", "read only with use_yarn_rope, which is refused"),
        new("norm_topk_prob", I, "false", "renormalise the top-k routing weights (Hugging Face's Mixtral does)"),
    ];

    static readonly Dictionary<string, ConfigField> ByName = All.ToDictionary(f => f.Name);

    public static ConfigField? Find(string name) => ByName.GetValueOrDefault(name);

    /// <summary>
    /// Throws for a refused field whose value is not TransformerLens's default, naming the field, its value
    /// and what to use instead. Fields outside TransformerLens's list are kept as metadata.
    /// </summary>
    public static void RefuseUnsupported(IReadOnlyDictionary<string, JsonElement>? extra, string source)
    {
        if (extra is null) return;
        foreach (var (name, value) in extra)
        {
            if (Find(name) is not { Status: ConfigFieldStatus.Refused } field || IsDefault(value, field.Default))
                continue;
            throw new ArgumentException(
                $"{source}: config field '{name}' = {value.GetRawText()} is not supported by Lens: {field.Note}");
        }
    }

    static bool IsDefault(JsonElement value, string defaultJson)
    {
        using var doc = JsonDocument.Parse(defaultJson);
        var d = doc.RootElement;
        return (value.ValueKind, d.ValueKind) switch
        {
            (JsonValueKind.Null, JsonValueKind.Null) => true,
            (JsonValueKind.True or JsonValueKind.False, JsonValueKind.True or JsonValueKind.False) =>
                value.ValueKind == d.ValueKind,
            (JsonValueKind.Number, JsonValueKind.Number) => value.GetDouble() == d.GetDouble(),
            (JsonValueKind.String, JsonValueKind.String) => value.GetString() == d.GetString(),
            _ => false,
        };
    }
}
