using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Lens;

/// <summary>
/// A model's hyper-parameters under TransformerLens's field names (snake_case in JSON, as Python's
/// <c>model.cfg.to_dict()</c> gives them) and defaults. Derived fields are filled by
/// <see cref="Complete"/> exactly as TransformerLens's <c>__post_init__</c> does.
/// </summary>
public sealed class HookedTransformerConfig
{
    [JsonPropertyName("n_layers")] public int NLayers { get; set; }
    [JsonPropertyName("d_model")] public int DModel { get; set; }
    [JsonPropertyName("n_ctx")] public int NCtx { get; set; }
    [JsonPropertyName("d_head")] public int DHead { get; set; }
    [JsonPropertyName("n_heads")] public int NHeads { get; set; } = -1;
    [JsonPropertyName("d_mlp")] public int? DMlp { get; set; }
    [JsonPropertyName("d_vocab")] public int DVocab { get; set; } = -1;
    [JsonPropertyName("d_vocab_out")] public int DVocabOut { get; set; } = -1;
    [JsonPropertyName("act_fn")]
    public string? ActFn
    {
        get => _actFn;
        set { _actFn = value; _activation = ConfigChoices.Activation.Find(value); }
    }
    [JsonPropertyName("eps")] public double Eps { get; set; } = 1e-5;
    [JsonPropertyName("normalization_type")]
    public string? NormalizationType
    {
        get => _normalizationType;
        set
        {
            _normalizationType = value;
            _normalization = value is null ? NormalizationKind.None : ConfigChoices.Normalization.Find(value);
        }
    }
    [JsonPropertyName("attn_only")] public bool AttnOnly { get; set; }
    [JsonPropertyName("positional_embedding_type")]
    public string PositionalEmbeddingType
    {
        get => _positionalEmbeddingType;
        set { _positionalEmbeddingType = value; _positionalEmbedding = ConfigChoices.PositionalEmbedding.Find(value); }
    }
    [JsonPropertyName("rotary_dim")] public int? RotaryDim { get; set; }
    [JsonPropertyName("rotary_base")] public double RotaryBase { get; set; } = 10000;
    [JsonPropertyName("rotary_adjacent_pairs")] public bool RotaryAdjacentPairs { get; set; }
    // Llama 3.x rotary scaling (NTK-by-parts, HF's rope_type "llama3").
    [JsonPropertyName("use_NTK_by_parts_rope")] public bool UseNtkByPartsRope { get; set; }
    [JsonPropertyName("NTK_by_parts_low_freq_factor")] public double NtkByPartsLowFreqFactor { get; set; } = 1.0;
    [JsonPropertyName("NTK_by_parts_high_freq_factor")] public double NtkByPartsHighFreqFactor { get; set; } = 4.0;
    [JsonPropertyName("NTK_by_parts_factor")] public double NtkByPartsFactor { get; set; } = 8.0;
    [JsonPropertyName("NTK_original_ctx_len")] public int NtkOriginalCtxLen { get; set; } = 8192;
    [JsonPropertyName("n_key_value_heads")] public int? NKeyValueHeads { get; set; }
    [JsonPropertyName("gated_mlp")] public bool GatedMlp { get; set; }
    [JsonPropertyName("parallel_attn_mlp")] public bool ParallelAttnMlp { get; set; }
    [JsonPropertyName("final_rms")] public bool FinalRms { get; set; }
    [JsonPropertyName("use_attn_scale")] public bool UseAttnScale { get; set; } = true;
    [JsonPropertyName("attn_scale")] public double AttnScale { get; set; } = -1.0;
    [JsonPropertyName("scale_attn_by_inverse_layer_idx")] public bool ScaleAttnByInverseLayerIdx { get; set; }
    [JsonPropertyName("use_attn_result")] public bool UseAttnResult { get; set; }
    [JsonPropertyName("use_split_qkv_input")] public bool UseSplitQkvInput { get; set; }
    [JsonPropertyName("use_hook_mlp_in")] public bool UseHookMlpIn { get; set; }
    [JsonPropertyName("use_attn_in")] public bool UseAttnIn { get; set; }
    [JsonPropertyName("use_hook_tokens")] public bool UseHookTokens { get; set; }
    [JsonPropertyName("use_local_attn")] public bool UseLocalAttn { get; set; }
    [JsonPropertyName("window_size")] public int? WindowSize { get; set; }
    [JsonPropertyName("attn_types")]
    public string[]? AttnTypes
    {
        get => _attnTypes;
        set { _attnTypes = value; _attentionKinds = value?.Select(t => ConfigChoices.AttentionKind.Find(t)).ToArray(); }
    }
    [JsonPropertyName("default_prepend_bos")] public bool DefaultPrependBos { get; set; } = true;
    [JsonPropertyName("tokenizer_name")] public string? TokenizerName { get; set; }
    [JsonPropertyName("tokenizer_prepends_bos")] public bool? TokenizerPrependsBos { get; set; }
    [JsonPropertyName("original_architecture")] public string? OriginalArchitecture { get; set; }
    [JsonPropertyName("model_name")] public string ModelName { get; set; } = "custom";
    [JsonPropertyName("seed")] public int? Seed { get; set; }
    [JsonPropertyName("dtype")] public string Dtype { get; set; } = "float32";
    [JsonPropertyName("device")] public string? Device { get; set; }
    [JsonPropertyName("init_weights")] public bool InitWeights { get; set; } = true;
    [JsonPropertyName("init_mode")]
    public string InitMode
    {
        get => _initMode;
        set { _initMode = value; _initialization = ConfigChoices.InitMode.Find(value); }
    }
    [JsonPropertyName("initializer_range")] public double InitializerRange { get; set; } = -1.0;
    [JsonPropertyName("attention_dir")]
    public string AttentionDir
    {
        get => _attentionDir;
        set { _attentionDir = value; _attentionDirection = ConfigChoices.AttentionDirection.Find(value); }
    }
    [JsonPropertyName("uses_rms_norm")] public bool UsesRmsNorm { get; set; }
    [JsonPropertyName("layer_norm_folding")] public bool LayerNormFolding { get; set; }
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; set; }
    [JsonPropertyName("n_params")] public long? NParams { get; set; }
    /// <summary>When &gt; 0, attention scores become cap·tanh(scores/cap) before masking (Gemma 2).</summary>
    [JsonPropertyName("attn_scores_soft_cap")] public double AttnScoresSoftCap { get; set; } = -1.0;
    /// <summary>When &gt; 0, the returned logits are cap·tanh(logits/cap); unembed.hook_out keeps the uncapped
    /// ones.</summary>
    [JsonPropertyName("output_logits_soft_cap")] public double OutputLogitsSoftCap { get; set; } = -1.0;
    /// <summary>Qwen3 / Gemma 3: RMSNorm (attn.q_norm, attn.k_norm, length d_head) of each head's query and key before
    /// rotary.</summary>
    [JsonPropertyName("use_qk_norm")] public bool UseQkNorm { get; set; }
    /// <summary>Gemma 2 / 3: RMSNorm after attention and after the MLP too (ln1_post, ln2_post), before hook_attn_out /
    /// hook_mlp_out.</summary>
    [JsonPropertyName("use_normalization_before_and_after")] public bool UseNormalizationBeforeAndAfter { get; set; }
    /// <summary>Gemma 3: the rotary base of local (sliding-window) layers; null means rotary_base everywhere.</summary>
    [JsonPropertyName("rotary_base_local")] public double? RotaryBaseLocal { get; set; }
    /// <summary>Linear rotary scaling of global layers (Gemma 3 4B+): their frequencies are divided by this
    /// factor.</summary>
    [JsonPropertyName("rotary_scaling_factor")] public double RotaryScalingFactor { get; set; } = 1.0;
    /// <summary>Mixture of experts (Mixtral): the MLP becomes num_experts gated experts, experts_per_token chosen per
    /// token.</summary>
    [JsonPropertyName("num_experts")] public int? NumExperts { get; set; }
    [JsonPropertyName("experts_per_token")] public int? ExpertsPerToken { get; set; }
    /// <summary>Whether the top-k routing weights are renormalised to sum to 1 (Hugging Face's Mixtral does;
    /// TransformerLens's default does not).</summary>
    [JsonPropertyName("norm_topk_prob")] public bool NormTopkProb { get; set; }

    /// <summary>
    /// Lens's own field (not TransformerLens's): the token-id range [low, high) a model's synthetic
    /// training curriculum drew from, so repeated-random inputs use the ids it was trained on.
    /// </summary>
    [JsonPropertyName("lens_random_token_range")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long[]? RandomTokenRange { get; set; }

    /// <summary>
    /// Fields of a config.json this class does not model, kept so that a save writes them back; a
    /// TransformerLens field that would change the computation is refused (see <see cref="ConfigFields"/>).
    /// </summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }

    // The enumerated fields: TransformerLens's JSON string (what is read and written back) and its value
    // as a type, looked up once when the string is set. A string Lens does not know is kept (so that the
    // config can still name it) and refused when its typed property is read; Complete reads them all.
    string? _actFn;
    ActivationFunction? _activation;
    string? _normalizationType = "LN";
    NormalizationKind? _normalization = NormalizationKind.LN;
    string _positionalEmbeddingType = "standard";
    PositionalEmbeddingKind? _positionalEmbedding = PositionalEmbeddingKind.Standard;
    string _attentionDir = "causal";
    AttentionDirection? _attentionDirection = Lens.AttentionDirection.Causal;
    string _initMode = "gpt2";
    InitMode? _initialization = Lens.InitMode.Gpt2;
    string[]? _attnTypes;
    AttentionKind?[]? _attentionKinds;

    /// <summary>act_fn as a type; refused when act_fn is null or a name Lens does not implement.</summary>
    [JsonIgnore]
    public ActivationFunction Activation
    {
        get => _activation ?? throw ConfigChoices.Activation.Unsupported(_actFn);
        set => ActFn = ConfigChoices.Activation.NameOf(value);
    }

    /// <summary>normalization_type as a type (null is <see cref="NormalizationKind.None"/>).</summary>
    [JsonIgnore]
    public NormalizationKind Normalization
    {
        get => _normalization ?? throw ConfigChoices.Normalization.Unsupported(_normalizationType, "null");
        set => NormalizationType = value == NormalizationKind.None ? null : ConfigChoices.Normalization.NameOf(value);
    }

    /// <summary>positional_embedding_type as a type.</summary>
    [JsonIgnore]
    public PositionalEmbeddingKind PositionalEmbedding
    {
        get => _positionalEmbedding ?? throw ConfigChoices.PositionalEmbedding.Unsupported(_positionalEmbeddingType);
        set => PositionalEmbeddingType = ConfigChoices.PositionalEmbedding.NameOf(value);
    }

    /// <summary>attention_dir as a type.</summary>
    [JsonIgnore]
    public AttentionDirection AttentionDirection
    {
        get => _attentionDirection ?? throw ConfigChoices.AttentionDirection.Unsupported(_attentionDir);
        set => AttentionDir = ConfigChoices.AttentionDirection.NameOf(value);
    }

    /// <summary>init_mode as a type (read only to initialise fresh weights, as TransformerLens does).</summary>
    [JsonIgnore]
    public InitMode Initialization
    {
        get => _initialization ?? throw ConfigChoices.InitMode.Unsupported(_initMode);
        set => InitMode = ConfigChoices.InitMode.NameOf(value);
    }

    /// <summary>attn_types as types, one per layer (null when attn_types is null).</summary>
    [JsonIgnore]
    public IReadOnlyList<AttentionKind>? AttentionKinds
    {
        get
        {
            if (_attentionKinds is null) return null;
            int unknown = Array.IndexOf(_attentionKinds, null);
            if (unknown >= 0) throw ConfigChoices.AttentionKind.Unsupported(_attnTypes![unknown]);
            return _attentionKinds.Select(k => k!.Value).ToArray();
        }
    }

    /// <summary>Whether layer <paramref name="layer"/> attends within window_size (use_local_attn and attn_types
    /// "local").</summary>
    public bool IsLocalLayer(int layer) => UseLocalAttn && AttentionKinds![layer] == AttentionKind.Local;

    /// <summary>Key/value heads (n_heads unless grouped-query attention).</summary>
    [JsonIgnore] public int KvHeads => NKeyValueHeads ?? NHeads;

    /// <summary>Checks the fields and computes the derived ones as TransformerLens does. Returns this.</summary>
    public HookedTransformerConfig Complete()
    {
        if (NLayers <= 0 || DModel <= 0 || NCtx <= 0 || DHead <= 0)
            throw new ArgumentException(
                $"config needs positive n_layers, d_model, n_ctx, d_head (got {NLayers}, {DModel}, {NCtx}, {DHead})");
        if (NHeads == -1)
        {
            if (DModel % DHead != 0)
                throw new ArgumentException($"d_model {DModel} is not a multiple of d_head {DHead}");
            NHeads = DModel / DHead;
        }
        if (!AttnOnly)
        {
            DMlp ??= DModel * 4;
            ActFn ??= "relu";
            _ = Activation;
        }
        // Reading a typed field refuses a name Lens does not know, naming the field, the value and the accepted names.
        _ = Normalization;
        _ = PositionalEmbedding;
        _ = AttentionDirection;
        ConfigFields.RefuseUnsupported(Extra, "config");
        if (DVocab <= 0) throw new ArgumentException("config needs d_vocab");
        if (DVocabOut == -1) DVocabOut = DVocab;
        if (InitializerRange < 0) InitializerRange = 0.8 / Math.Sqrt(DModel);
        if (UseAttnScale && AttnScale == -1.0) AttnScale = Math.Sqrt(DHead);
        if (!UseAttnScale) AttnScale = 1.0;
        if (PositionalEmbedding == PositionalEmbeddingKind.Rotary) RotaryDim ??= DHead;
        if (NKeyValueHeads is int kv && kv > 0 && NHeads % kv != 0)
            throw new ArgumentException($"n_heads {NHeads} is not a multiple of n_key_value_heads {kv}");
        UsesRmsNorm = Normalization is NormalizationKind.RMS or NormalizationKind.RMSPre;
        if (UseLocalAttn && AttnTypes is null) throw new ArgumentException("use_local_attn needs attn_types");
        if (UseLocalAttn && WindowSize is null && AttentionKinds!.Contains(AttentionKind.Local))
            throw new ArgumentException("config field 'window_size' is null but attn_types has local layers: local " +
                "attention needs a window_size");
        // TransformerLens builds the post-norms only for RMS (its LN branch never matches and fails to build the
        // block).
        if (UseNormalizationBeforeAndAfter && Normalization is NormalizationKind.LN or NormalizationKind.LNPre)
            throw new ArgumentException($"config field 'use_normalization_before_and_after' = true needs " +
                $"normalization_type RMS or RMSPre (got \"{NormalizationType}\"): TransformerLens builds no " +
                $"LayerNorm post-norm");
        if ((NumExperts is null) != (ExpertsPerToken is null))
            throw new ArgumentException(
                "num_experts and experts_per_token must be set together (both null for a dense MLP)");
        if (NumExperts is int experts && (experts < 1 || ExpertsPerToken < 1 || ExpertsPerToken > experts || AttnOnly))
            throw new ArgumentException($"mixture of experts needs 1 <= experts_per_token ({ExpertsPerToken}) <= " +
                $"num_experts ({experts}) and an MLP (attn_only false)");
        ConfigValueDomains.Check(this);
        // TransformerLens's n_params: the attention and MLP weight matrices, no biases or norms.
        NParams = (long)NLayers * DModel * DHead * NHeads * 4;
        if (!AttnOnly && NumExperts is int e)
            NParams += (long)NLayers * ((long)DModel * DMlp!.Value * (2 + (GatedMlp ? 1 : 0)) + DModel) * e;
        else if (!AttnOnly) NParams += (long)NLayers * DModel * DMlp!.Value * (2 + (GatedMlp ? 1 : 0));
        return this;
    }

    public string ToJson() => JsonSerializer.Serialize(this, ConfigJsonContext.Default.HookedTransformerConfig);

    public static HookedTransformerConfig FromJson(string json, string source = "config")
    {
        HookedTransformerConfig? cfg;
        try { cfg = JsonSerializer.Deserialize(json, ConfigJsonContext.Default.HookedTransformerConfig); }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: not a valid TransformerLens config ({e.Message})", e);
        }
        if (cfg is null) throw new FormatException($"{source}: empty config");
        // TransformerLens writes dtype as "torch.float32" in some versions.
        if (cfg.Dtype.StartsWith("torch.", StringComparison.Ordinal)) cfg.Dtype = cfg.Dtype["torch.".Length..];
        ConfigFields.RefuseUnsupported(cfg.Extra, source);
        try { return cfg.Complete(); }
        catch (ArgumentException e) { throw new ArgumentException($"{source}: {e.Message}", e); }
    }

    public HookedTransformerConfig Clone() => FromJson(ToJson());

    /// <summary>The config as a JSON object (what <c>cfg.to_dict()</c> gives), for reports.</summary>
    public JsonObject ToJsonObject() => JsonNode.Parse(ToJson())!.AsObject();
}

/// <summary>
/// Compile-time JSON metadata for the config: reading a config.json no longer builds the serializer
/// by reflection at run time (about a quarter of a second of every <c>lens</c> command's start-up).
/// </summary>
[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    NumberHandling = JsonNumberHandling.AllowReadingFromString | JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(HookedTransformerConfig))]
internal sealed partial class ConfigJsonContext : JsonSerializerContext;
