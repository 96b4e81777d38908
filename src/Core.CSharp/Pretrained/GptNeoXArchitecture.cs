namespace Lens.Pretrained;

/// <summary>
/// GPT-NeoX (GPTNeoXForCausalLM: the Pythia models). The fused query_key_value [3·d_model, d_model]
/// is laid out per head as (head, q|k|v, d_head) — interleaved, unlike GPT-2's q|k|v blocks. Rotary
/// (rotate-half) covers the first rotary_pct·d_head dims of each head; attention and MLP read the
/// same residual (parallel). The unembedding embed_out is separate from embed_in.
/// </summary>
public sealed class GptNeoXArchitecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => ["GPTNeoXForCausalLM"];
    public override string BasePrefix => "gpt_neox.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        int d = hf.Int("hidden_size", 6144), heads = hf.Int("num_attention_heads", 64);
        cfg.DModel = d;
        cfg.DHead = d / heads;
        cfg.NHeads = heads;
        cfg.DMlp = hf.Int("intermediate_size", 24576);
        cfg.NLayers = hf.Int("num_hidden_layers", 44);
        cfg.NCtx = hf.Int("max_position_embeddings", 2048);
        cfg.Eps = hf.Double("layer_norm_eps", 1e-5);
        cfg.DVocab = hf.Int("vocab_size", 50432);
        cfg.ActFn = hf.String("hidden_act", "gelu");
        cfg.UseAttnScale = true;
        cfg.UseLocalAttn = false;
        cfg.ScaleAttnByInverseLayerIdx = false;
        // TransformerLens always uses the parallel block; HF's use_parallel_residual = false (no official model) is
        // honoured.
        cfg.ParallelAttnMlp = hf.Bool("use_parallel_residual", true);
        cfg.PositionalEmbeddingType = "rotary";
        cfg.RotaryAdjacentPairs = false;
        cfg.NormalizationType = "LN";
        cfg.RotaryDim = PyRound(RotaryPct(hf) * cfg.DHead);
        // TransformerLens keeps its default base 10000, which is every Pythia model's rotary_emb_base.
        cfg.RotaryBase = hf.DoubleOrNull("rotary_emb_base")
            ?? hf.Object("rope_parameters")?["rope_theta"]?.GetValue<double>() ?? 10000;
        return cfg;
    }

    /// <summary>rotary_pct (transformers 4; HF's default 0.25), or rope_parameters.partial_rotary_factor (transformers
    /// 5).</summary>
    static double RotaryPct(HfConfig hf)
    {
        if (hf.Has("rotary_pct")) return hf.Double("rotary_pct");
        if (hf.Object("rope_parameters")?["partial_rotary_factor"] is { } f) return f.GetValue<double>();
        return 0.25;
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads, d = cfg.DModel;
        yield return W("embed.W_E", t => ckpt.Load("gpt_neox.embed_in.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"gpt_neox.layers.{l}.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "input_layernorm.weight", t));
            yield return W(b + "ln1.b", t => ckpt.Load(h + "input_layernorm.bias", t));
            string[] parts = ["Q", "K", "V"];
            for (int i = 0; i < 3; i++)
            {
                int part = i;
                // rows "(head qkv d_head)": [n, 3, e, d] → pick q, k or v → [n, d, e].
                yield return W($"{b}attn.W_{parts[part]}",
                    t => ckpt.Load(h + "attention.query_key_value.weight", t).view(n, 3, -1, d).select(1, part)
                    .permute(0, 2, 1));
                if (ckpt.Contains(h + "attention.query_key_value.bias")) // absent when attention_bias = false
                    yield return W($"{b}attn.b_{parts[part]}",
                        t => ckpt.Load(h + "attention.query_key_value.bias", t).view(n, 3, -1).select(1, part));
            }
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(h + "attention.dense.weight", t), n));
            if (ckpt.Contains(h + "attention.dense.bias"))
                yield return W(b + "attn.b_O", t => ckpt.Load(h + "attention.dense.bias", t));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "post_attention_layernorm.weight", t));
            yield return W(b + "ln2.b", t => ckpt.Load(h + "post_attention_layernorm.bias", t));
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.dense_h_to_4h.weight", t).t());
            yield return W(b + "mlp.b_in", t => ckpt.Load(h + "mlp.dense_h_to_4h.bias", t));
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.dense_4h_to_h.weight", t).t());
            yield return W(b + "mlp.b_out", t => ckpt.Load(h + "mlp.dense_4h_to_h.bias", t));
        }
        yield return W("ln_final.w", t => ckpt.Load("gpt_neox.final_layer_norm.weight", t));
        yield return W("ln_final.b", t => ckpt.Load("gpt_neox.final_layer_norm.bias", t));
        yield return W("unembed.W_U", t => ckpt.Load("embed_out.weight", t).t());
    }
}
