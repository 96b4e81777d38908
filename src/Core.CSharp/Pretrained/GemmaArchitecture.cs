using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Lens.Pretrained;

/// <summary>
/// Gemma 1, 2 and 3 (GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, and the text model of
/// Gemma3ForConditionalGeneration), converted as TransformerLens's convert_gemma_weights does, with the
/// numbers Hugging Face's modelling code gives:
/// <list type="bullet">
/// <item>W_E = embed_tokens · sqrt(d_model), the factor rounded to the load dtype first (HF and TransformerLens
/// both multiply by <c>torch.tensor(sqrt(d_model), dtype)</c>); W_U = the unscaled embed_tokensᵀ when tied.</item>
/// <item>Every RMSNorm weight is 1 + w (Gemma's RMSNorm multiplies by 1 + w), computed in float32.</item>
/// <item>Gemma 2/3: post_attention_layernorm is ln1_post, pre/post_feedforward_layernorm are ln2/ln2_post; Gemma 1's
/// post_attention_layernorm is ln2.</item>
/// <item>Local (sliding) layers come from HF's layer_types, or its default order: Gemma 2 makes EVEN layers sliding
/// (layer 0 local), Gemma 3 every layer but each sliding_window_pattern-th. TransformerLens 3.5.1's Gemma 2 configs
/// put layer 0 global (its issue 778); a Hugging Face checkpoint gets Hugging Face's order here.</item>
/// <item>attn_scale = sqrt(query_pre_attn_scalar) (Gemma 2/3), sqrt(head_dim) (Gemma 1); soft caps from
/// attn_logit_softcapping / final_logit_softcapping (Gemma 2; Gemma 3's final cap).</item>
/// <item>Gemma 3: q_norm/k_norm, rope_local_base_freq for local layers, linear rope_scaling on global layers.</item>
/// </list>
/// What this mapping cannot reproduce exactly (biases, other rope scalings, bidirectional attention,
/// Gemma 3's attn_logit_softcapping, which its attention ignores) is refused naming the key.
/// </summary>
public sealed class GemmaArchitecture : HfArchitecture
{
    public const string Gemma = "GemmaForCausalLM", Gemma2 = "Gemma2ForCausalLM", Gemma3 = "Gemma3ForCausalLM",
        Gemma3Multimodal = "Gemma3ForConditionalGeneration";

    public override IReadOnlyList<string> Names => [Gemma, Gemma2, Gemma3, Gemma3Multimodal];
    public override string BasePrefix => "model.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        if (architecture == Gemma3Multimodal) hf = TextConfig(hf);
        int version = architecture == Gemma ? 1 : architecture == Gemma2 ? 2 : 3;
        var cfg = Base(architecture);
        int d = hf.Int("hidden_size", version == 1 ? 3072 : 2304),
            heads = hf.Int("num_attention_heads", version == 1 ? 16 : 8);
        int kv = hf.IntOrNull("num_key_value_heads") ?? (version == 1 ? heads : 4);
        int headDim = hf.Int("head_dim", 256);
        cfg.DModel = d;
        cfg.DHead = headDim;
        cfg.NHeads = heads;
        cfg.NKeyValueHeads = kv;   // TransformerLens always stores Gemma's keys and values as _W_K/_W_V
        cfg.DMlp = hf.Int("intermediate_size", version == 1 ? 24576 : 9216);
        cfg.NLayers = hf.Int("num_hidden_layers", version == 1 ? 28 : 26);
        // TransformerLens's Gemma configs use n_ctx 8192 (Gemma 3's "safe default" below its 32K/128K).
        cfg.NCtx = Math.Min(hf.Int("max_position_embeddings", 8192), 8192);
        cfg.Eps = hf.Double("rms_norm_eps", 1e-6);
        cfg.DVocab = hf.Int("vocab_size", version == 3 ? 262208 : 256000);
        // Gemma 1's MLP reads hidden_act (HF's current GemmaMLP); Gemma 2 and 3 read hidden_activation.
        cfg.ActFn = version == 1
            ? hf.String("hidden_act", "gelu_pytorch_tanh")
            : hf.String("hidden_activation", "gelu_pytorch_tanh");
        cfg.InitializerRange = hf.Double("initializer_range", 0.02);
        cfg.NormalizationType = "RMS";
        cfg.FinalRms = true;
        cfg.GatedMlp = true;
        cfg.PositionalEmbeddingType = "rotary";
        cfg.RotaryAdjacentPairs = false;
        cfg.RotaryDim = headDim;
        cfg.UseAttnScale = true;
        cfg.TieWordEmbeddings = hf.Bool("tie_word_embeddings", true);
        if (hf.Bool("attention_bias", false))
            throw Refuse(hf, "attention_bias", "true", "Gemma's attention has no biases");
        if (hf.Bool("use_bidirectional_attention", false))
            throw Refuse(hf, "use_bidirectional_attention", "true",
                "bidirectional attention within the sliding window is not implemented");
        cfg.AttnScale = version == 1 ? Math.Sqrt(headDim) : Math.Sqrt(hf.Double("query_pre_attn_scalar", 256));
        if (version == 1)
        {
            cfg.RotaryBase = RopeTheta(hf, null, 10000);
            RefuseRopeScaling(hf, RopeScaling(hf, null));
            return cfg;
        }
        cfg.UseNormalizationBeforeAndAfter = true;
        cfg.UseLocalAttn = true;
        cfg.WindowSize = hf.Int("sliding_window", 4096);
        cfg.AttnTypes = LayerTypes(hf, cfg.NLayers, version);
        if (version == 2)
        {
            cfg.RotaryBase = RopeTheta(hf, null, 10000);
            RefuseRopeScaling(hf, RopeScaling(hf, null));
            cfg.AttnScoresSoftCap =
                hf.ContainsKey("attn_logit_softcapping") ? hf.DoubleOrNull("attn_logit_softcapping") ?? -1.0 : 50.0;
            cfg.OutputLogitsSoftCap =
                hf.ContainsKey("final_logit_softcapping") ? hf.DoubleOrNull("final_logit_softcapping") ?? -1.0 : 30.0;
            return cfg;
        }
        cfg.UseQkNorm = true;
        cfg.RotaryBase = RopeTheta(hf, "full_attention", 1_000_000);
        cfg.RotaryBaseLocal = hf.DoubleOrNull("rope_local_base_freq") ?? RopeTheta(hf, "sliding_attention", 10000);
        // HF's local rotary is always the default (unscaled) one; the global one may be linearly scaled.
        if (RopeScaling(hf, "full_attention") is { } scaling && RopeType(scaling) == "linear")
            cfg.RotaryScalingFactor = scaling["factor"]?.GetValue<double>()
                ?? throw new CheckpointException($"{hf.Source}: linear rope scaling needs 'factor'");
        else RefuseRopeScaling(hf, RopeScaling(hf, "full_attention"));
        RefuseRopeScaling(hf, RopeScaling(hf, "sliding_attention"));
        // Gemma 3's attention never applies attn_logit_softcapping (its attention call passes no softcap).
        if (hf.DoubleOrNull("attn_logit_softcapping") is double cap)
            throw Refuse(hf, "attn_logit_softcapping", cap.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "Hugging Face's Gemma 3 attention does not apply it, so what it should mean is ambiguous; use null");
        cfg.OutputLogitsSoftCap = hf.DoubleOrNull("final_logit_softcapping") ?? -1.0;
        return cfg;
    }

    /// <summary>Gemma3ForConditionalGeneration: the language model's config is its text_config.</summary>
    static HfConfig TextConfig(HfConfig hf) =>
        hf.Object("text_config") is { } text ? HfConfig.Parse(text.ToJsonString(), hf.Source + " (text_config)")
            : throw new CheckpointException($"{hf.Source}: Gemma3ForConditionalGeneration needs 'text_config'");

    /// <summary>
    /// "local"/"global" per layer from HF's layer_types, else HF's default: Gemma 2 slides on even layers
    /// (is_sliding = not layer_idx % 2), Gemma 3 on every layer but each sliding_window_pattern-th.
    /// </summary>
    static string[] LayerTypes(HfConfig hf, int layers, int version)
    {
        if (hf["layer_types"] is JsonArray types)
        {
            if (types.Count != layers)
                throw new CheckpointException(
                    $"{hf.Source}: 'layer_types' has {types.Count} entries but num_hidden_layers is {layers}");
            return types.Select((t, i) => t?.GetValue<string>() switch
            {
                "sliding_attention" => "local",
                "full_attention" => "global",
                var other => throw new CheckpointException(
                    $"{hf.Source}: layer_types[{i}] = '{other}' is neither sliding_attention nor full_attention"),
            }).ToArray();
        }
        int pattern = version == 2 ? 2 : hf.Int("sliding_window_pattern", 6);
        if (pattern < 1)
            throw new CheckpointException($"{hf.Source}: 'sliding_window_pattern' must be at least 1 (got {pattern})");
        return Enumerable.Range(0, layers).Select(i => (i + 1) % pattern != 0 ? "local" : "global").ToArray();
    }

    /// <summary>rope_theta (transformers 4), or rope_parameters[layerType].rope_theta / rope_parameters.rope_theta
    /// (transformers 5).</summary>
    static double RopeTheta(HfConfig hf, string? layerType, double fallback)
    {
        if (hf.DoubleOrNull("rope_theta") is double theta) return theta;
        var p = hf.Object("rope_parameters");
        var node = (layerType is not null ? (p?[layerType] as JsonObject)?["rope_theta"] : null) ?? p?["rope_theta"];
        return node?.GetValue<double>() ?? fallback;
    }

    static JsonObject? RopeScaling(HfConfig hf, string? layerType)
    {
        if (hf.Object("rope_scaling") is { } s) return layerType == "sliding_attention" ? null : s;
        var p = hf.Object("rope_parameters");
        return layerType is not null && p?[layerType] is JsonObject perLayer ? perLayer : p;
    }

    static string RopeType(JsonObject scaling) =>
        scaling["rope_type"]?.GetValue<string>() ?? scaling["type"]?.GetValue<string>() ?? "default";

    static void RefuseRopeScaling(HfConfig hf, JsonObject? scaling)
    {
        var kind = scaling is null ? "default" : RopeType(scaling);
        if (kind != "default")
            throw new CheckpointException($"{hf.Source}: rope scaling of type '{kind}' is not supported for this " +
                $"model (only default, and linear on Gemma 3's global layers)");
    }

    static CheckpointException Refuse(HfConfig hf, string key, string value, string why) =>
        new($"{hf.Source}: '{key}' = {value} is not supported: {why}");

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads, kv = cfg.KvHeads;
        var m = LanguageModelPrefix(ckpt);
        bool version1 = !cfg.UseNormalizationBeforeAndAfter;
        foreach (var name in ckpt.Names)
            if (name.EndsWith(".bias", StringComparison.Ordinal) && !name.Contains("vision")
                && !name.Contains("multi_modal"))
                throw new CheckpointException($"{ckpt.Folder}: tensor '{name}' is a bias, which Gemma has none of: " +
                    $"this checkpoint is not a Gemma model Lens can convert");
        double scale = Math.Sqrt(cfg.DModel);
        yield return W("embed.W_E", t =>
        {
            using var factor = tensor(scale, dtype: t);
            return ckpt.Load(m + "embed_tokens.weight", t) * factor;
        });
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"{m}layers.{l}.", a = h + "self_attn.", b = $"blocks.{l}.";
            yield return OnePlus(ckpt, b + "ln1.w", h + "input_layernorm.weight");
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "q_proj.weight", t), n));
            yield return W(b + "attn._W_K", t => InputHeads(ckpt.Load(a + "k_proj.weight", t), kv));
            yield return W(b + "attn._W_V", t => InputHeads(ckpt.Load(a + "v_proj.weight", t), kv));
            if (cfg.UseQkNorm)
            {
                yield return OnePlus(ckpt, b + "attn.q_norm.w", a + "q_norm.weight");
                yield return OnePlus(ckpt, b + "attn.k_norm.w", a + "k_norm.weight");
            }
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "o_proj.weight", t), n));
            if (version1)
                yield return OnePlus(ckpt, b + "ln2.w", h + "post_attention_layernorm.weight");
            else
            {
                yield return OnePlus(ckpt, b + "ln1_post.w", h + "post_attention_layernorm.weight");
                yield return OnePlus(ckpt, b + "ln2.w", h + "pre_feedforward_layernorm.weight");
                yield return OnePlus(ckpt, b + "ln2_post.w", h + "post_feedforward_layernorm.weight");
            }
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.up_proj.weight", t).t());
            yield return W(b + "mlp.W_gate", t => ckpt.Load(h + "mlp.gate_proj.weight", t).t());
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.down_proj.weight", t).t());
        }
        yield return OnePlus(ckpt, "ln_final.w", m + "norm.weight");
        var head = new[] { "lm_head.weight", "language_model.lm_head.weight" }.FirstOrDefault(ckpt.Contains)
            ?? m + "embed_tokens.weight";
        yield return W("unembed.W_U", t => ckpt.Load(head, t).t());
    }

    /// <summary>Where the language model's tensors are: model. (causal LM), or a multimodal checkpoint's language
    /// model.</summary>
    static string LanguageModelPrefix(CheckpointWeights ckpt) =>
        new[] { "model.", "language_model.model.", "model.language_model." }.FirstOrDefault(p =>
            ckpt.Contains(p + "embed_tokens.weight"))
        ?? throw new CheckpointException(
        $"{ckpt.Folder}: no embed_tokens.weight under model., language_model.model. or model.language_model.");

    /// <summary>Gemma's RMSNorm multiplies by 1 + w: TransformerLens stores 1 + w, added in float32 (float64 for
    /// float64 models).</summary>
    static ConvertedWeight OnePlus(CheckpointWeights ckpt, string name, string hfName) =>
        W(name, t => (ckpt.Load(hfName, t == ScalarType.Float64 ? t : ScalarType.Float32) + 1.0).to(t));
}
