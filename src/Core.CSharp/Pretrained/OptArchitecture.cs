namespace Lens.Pretrained;

/// <summary>
/// OPT (OPTForCausalLM): learned positions whose table starts 2 rows in (HF's OPTLearnedPositionalEmbedding
/// offset; TransformerLens keeps embed_positions[2:] as W_pos), pre-LayerNorm blocks with biases
/// everywhere, ReLU, and lm_head tied to embed_tokens. Configurations this model cannot compute are
/// refused naming the field: post-LayerNorm blocks (do_layer_norm_before false, opt-350m), an embedding
/// projection (word_embed_proj_dim ≠ hidden_size), no final LayerNorm, no biases, LayerNorms without weights.
/// </summary>
public sealed class OptArchitecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => ["OPTForCausalLM"];
    public override string BasePrefix => "model.";

    /// <summary>Rows of embed_positions before position 0 (HF's OPTLearnedPositionalEmbedding.offset).</summary>
    const int PositionOffset = 2;

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        int d = hf.Int("hidden_size", 768), heads = hf.Int("num_attention_heads", 12);
        Refuse(hf, "do_layer_norm_before", hf.Bool("do_layer_norm_before", true), true,
            "post-LayerNorm blocks (opt-350m) are not implemented: Lens's blocks normalise before attention and MLP");
        Refuse(hf, "word_embed_proj_dim", hf.IntOrNull("word_embed_proj_dim") ?? d, d,
            "an embedding width other than hidden_size needs project_in/project_out, which are not implemented");
        Refuse(hf, "_remove_final_layer_norm", hf.Bool("_remove_final_layer_norm", false), false,
            "a model without its final LayerNorm is not implemented");
        Refuse(hf, "enable_bias", hf.Bool("enable_bias", true), true, "OPT without biases is not implemented");
        Refuse(hf, "layer_norm_elementwise_affine", hf.Bool("layer_norm_elementwise_affine", true), true,
            "LayerNorms without weight and bias are not implemented");
        cfg.DModel = d;
        cfg.DHead = d / heads;
        cfg.NHeads = heads;
        cfg.DMlp = hf.Int("ffn_dim", 3072);
        cfg.NLayers = hf.Int("num_hidden_layers", 12);
        cfg.NCtx = hf.Int("max_position_embeddings", 2048);
        cfg.Eps = 1e-5; // nn.LayerNorm's default, which OPT's layers use
        cfg.DVocab = hf.Int("vocab_size", 50272);
        cfg.ActFn = hf.String("activation_function", "relu");
        cfg.UseAttnScale = true;
        cfg.UseLocalAttn = false;
        cfg.ScaleAttnByInverseLayerIdx = false;
        cfg.NormalizationType = "LN";
        return cfg;
    }

    static void Refuse<T>(HfConfig hf, string field, T value, T supported, string why)
    {
        if (!EqualityComparer<T>.Default.Equals(value, supported))
            throw new CheckpointException($"{hf.Source}: OPT config field '{field}' " +
                $"= {hf[field]?.ToJsonString() ?? "null"} is not supported: {why}");
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads;
        const string dec = "model.decoder.";
        yield return W("embed.W_E", t => ckpt.Load(dec + "embed_tokens.weight", t));
        yield return W("pos_embed.W_pos", t =>
        {
            var table = ckpt.Load(dec + "embed_positions.weight", t);
            if (table.shape[0] != cfg.NCtx + PositionOffset)
                throw new CheckpointException($"{ckpt.Folder}: embed_positions has {table.shape[0]} rows; OPT needs " +
                    $"max_position_embeddings + 2 = {cfg.NCtx + PositionOffset}");
            return table.narrow(0, PositionOffset, cfg.NCtx);
        });
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"{dec}layers.{l}.", a = h + "self_attn.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "self_attn_layer_norm.weight", t));
            yield return W(b + "ln1.b", t => ckpt.Load(h + "self_attn_layer_norm.bias", t));
            foreach (var (part, proj) in new[] { ("Q", "q_proj"), ("K", "k_proj"), ("V", "v_proj") })
            {
                yield return W($"{b}attn.W_{part}", t => InputHeads(ckpt.Load($"{a}{proj}.weight", t), n));
                yield return W($"{b}attn.b_{part}", t => BiasHeads(ckpt.Load($"{a}{proj}.bias", t), n));
            }
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "out_proj.weight", t), n));
            yield return W(b + "attn.b_O", t => ckpt.Load(a + "out_proj.bias", t));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "final_layer_norm.weight", t));
            yield return W(b + "ln2.b", t => ckpt.Load(h + "final_layer_norm.bias", t));
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "fc1.weight", t).t());
            yield return W(b + "mlp.b_in", t => ckpt.Load(h + "fc1.bias", t));
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "fc2.weight", t).t());
            yield return W(b + "mlp.b_out", t => ckpt.Load(h + "fc2.bias", t));
        }
        yield return W("ln_final.w", t => ckpt.Load(dec + "final_layer_norm.weight", t));
        yield return W("ln_final.b", t => ckpt.Load(dec + "final_layer_norm.bias", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : dec + "embed_tokens.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
