namespace Lens.Pretrained;

/// <summary>
/// Phi-3 (Phi3ForCausalLM): Llama-like (RMSNorm, rotate-half rotary, SwiGLU) with fused projections:
/// self_attn.qkv_proj rows are [q | k | v] (n_heads, then n_key_value_heads, heads of d_head each) and
/// mlp.gate_up_proj rows are [gate | up], split as TransformerLens's convert_phi3_weights does. Where
/// TransformerLens ignores a Hugging Face field this follows Hugging Face: sliding_window becomes local
/// attention on every layer and partial_rotary_factor the rotary_dim; rope_scaling (longrope, the
/// 128k models) is refused.
/// </summary>
public sealed class Phi3Architecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => ["Phi3ForCausalLM"];
    public override string BasePrefix => "model.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        ReadAttentionShape(cfg, hf, 3072);
        cfg.DMlp = hf.Int("intermediate_size", 8192);
        cfg.NLayers = hf.Int("num_hidden_layers", 32);
        cfg.NCtx = hf.Int("max_position_embeddings", 4096);
        cfg.Eps = hf.Double("rms_norm_eps", 1e-5);
        cfg.DVocab = hf.Int("vocab_size", 32064);
        cfg.ActFn = hf.String("hidden_act", "silu");
        cfg.InitializerRange = hf.Double("initializer_range", 0.02);
        cfg.NormalizationType = "RMS";
        cfg.PositionalEmbeddingType = "rotary";
        cfg.RotaryBase = hf.Double("rope_theta", 10000);
        cfg.UseAttnScale = true;
        cfg.GatedMlp = true;
        cfg.ParallelAttnMlp = false;
        cfg.RotaryDim = (int)(cfg.DHead * hf.Double("partial_rotary_factor", 1.0));
        cfg.TieWordEmbeddings = hf.Bool("tie_word_embeddings", false);
        SlidingWindowOnEveryLayer(cfg, hf.IntOrNull("sliding_window"));
        RefuseRopeScaling(hf);
        return cfg;
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads, kv = cfg.KvHeads, e = cfg.DHead, f = cfg.DMlp!.Value;
        string g = cfg.NKeyValueHeads is null ? "" : "_";
        yield return W("embed.W_E", t => ckpt.Load("model.embed_tokens.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"model.layers.{l}.", a = h + "self_attn.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "input_layernorm.weight", t));
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "qkv_proj.weight", t).narrow(0, 0, n * e), n));
            yield return W($"{b}attn.{g}W_K",
                t => InputHeads(ckpt.Load(a + "qkv_proj.weight", t).narrow(0, n * e, kv * e), kv));
            yield return W($"{b}attn.{g}W_V",
                t => InputHeads(ckpt.Load(a + "qkv_proj.weight", t).narrow(0, (n + kv) * e, kv * e), kv));
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "o_proj.weight", t), n));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "post_attention_layernorm.weight", t));
            yield return W(b + "mlp.W_gate", t => ckpt.Load(h + "mlp.gate_up_proj.weight", t).narrow(0, 0, f).t());
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.gate_up_proj.weight", t).narrow(0, f, f).t());
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.down_proj.weight", t).t());
        }
        yield return W("ln_final.w", t => ckpt.Load("model.norm.weight", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
