namespace Lens;

/// <summary>
/// The values each numeric field of a <see cref="HookedTransformerConfig"/> may take, checked once its derived
/// fields are filled: a config.json with `"n_heads": -4`, a `rotary_dim` above `d_head` or an `n_ctx` of two
/// billion is refused here, naming the field, before any tensor is made (such values would otherwise reach
/// libtorch as negative or impossible sizes and end the process). Whether a field is supported at all is
/// decided elsewhere; this file is only about the values of the fields Lens reads.
/// </summary>
public static class ConfigValueDomains
{
    /// <summary>The longest context Lens builds positional tables for (TransformerLens's models reach
    /// 131072).</summary>
    public const int MaxContext = 1 << 20;

    /// <summary>The largest width of any one dimension (d_model, d_head, d_mlp, d_vocab).</summary>
    public const int MaxDimension = 1 << 24;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first field whose value is out of its
    /// domain.</summary>
    public static void Check(HookedTransformerConfig cfg)
    {
        AtLeastOne("n_layers", cfg.NLayers, 4096);
        AtLeastOne("d_model", cfg.DModel, MaxDimension);
        AtLeastOne("d_head", cfg.DHead, MaxDimension);
        AtLeastOne("n_ctx", cfg.NCtx, MaxContext);
        if (cfg.NHeads < 1)
            throw Refuse("n_heads", cfg.NHeads, "at least 1 (or -1, to derive it as d_model / d_head)");
        AtLeastOne("n_heads", cfg.NHeads, MaxDimension);
        AtLeastOne("d_vocab", cfg.DVocab, MaxDimension);
        AtLeastOne("d_vocab_out", cfg.DVocabOut, MaxDimension);
        if (!cfg.AttnOnly && cfg.DMlp is int dMlp) AtLeastOne("d_mlp", dMlp, MaxDimension);
        if (cfg.NKeyValueHeads is int kv && (kv < 1 || kv > cfg.NHeads))
            throw Refuse("n_key_value_heads", kv, $"between 1 and n_heads ({cfg.NHeads})");
        Positive("eps", cfg.Eps);
        if (cfg.UseAttnScale) Positive("attn_scale", cfg.AttnScale);
        if (!double.IsFinite(cfg.InitializerRange))
            throw Refuse("initializer_range", cfg.InitializerRange, "a finite number");
        if (cfg.PositionalEmbedding == PositionalEmbeddingKind.Rotary)
        {
            var rotary = cfg.RotaryDim ?? cfg.DHead;
            if (rotary < 2 || rotary > cfg.DHead || rotary % 2 != 0)
                throw Refuse("rotary_dim", rotary, $"an even number between 2 and d_head ({cfg.DHead})");
            Positive("rotary_base", cfg.RotaryBase);
            if (cfg.RotaryBaseLocal is double local) Positive("rotary_base_local", local);
            Positive("rotary_scaling_factor", cfg.RotaryScalingFactor);
        }
        if (cfg.UseNtkByPartsRope)
        {
            Positive("NTK_by_parts_factor", cfg.NtkByPartsFactor);
            Positive("NTK_by_parts_low_freq_factor", cfg.NtkByPartsLowFreqFactor);
            Positive("NTK_by_parts_high_freq_factor", cfg.NtkByPartsHighFreqFactor);
            AtLeastOne("NTK_original_ctx_len", cfg.NtkOriginalCtxLen, MaxContext);
        }
        if (cfg.WindowSize is int window) AtLeastOne("window_size", window, MaxContext);
        if (cfg.OriginalArchitecture is "Olmo2ForCausalLM" or "Olmo3ForCausalLM")
            throw new ArgumentException($"config field original_architecture is '{cfg.OriginalArchitecture}': "
                                        + $"TransformerLens gives it post-norm blocks "
                                        + "and q/k norms over the whole projection, which Lens does not compute "
                                        + "(OlmoeForCausalLM is supported)");
        if (cfg.AttnTypes is { } types)
        {
            _ = cfg.AttentionKinds; // refuses an entry other than global or local
            if (types.Length != cfg.NLayers)
                throw new ArgumentException($"config field attn_types has {types.Length} entries; it needs one per " +
                    $"layer (n_layers {cfg.NLayers})");
        }
        var parameters = MemoryEstimate.ParameterBytes(cfg);
        var available = MemoryEstimate.AvailableBytes();
        if (parameters > available)
            throw new ArgumentException($"the model's parameters need {MemoryEstimate.Describe(parameters)} "
                                        + $"(d_vocab {cfg.DVocab}, d_model {cfg.DModel}, "
                                        + $"n_layers {cfg.NLayers}, n_ctx {cfg.NCtx}) but this machine "
                                        + $"has {MemoryEstimate.Describe(available)} available");
        if (cfg.RandomTokenRange is { } range
            && (range.Length != 2 || range[0] < 0 || range[1] <= range[0] || range[1] > cfg.DVocab))
            throw new ArgumentException($"config field lens_random_token_range is [{string.Join(", ", range)}]; it " +
                $"must be [low, high) with 0 <= low < high <= d_vocab ({cfg.DVocab})");
    }

    static void AtLeastOne(string field, int value, int max)
    {
        if (value < 1 || value > max) throw Refuse(field, value, $"between 1 and {max}");
    }

    static void Positive(string field, double value)
    {
        if (!(value > 0) || !double.IsFinite(value)) throw Refuse(field, value, "a finite number above 0");
    }

    static ArgumentException Refuse(string field, object value, string domain) =>
        new($"config field {field} is {Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)}; " +
            $"it must be {domain}");
}
