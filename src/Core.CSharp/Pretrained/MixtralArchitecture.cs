namespace Lens.Pretrained;

/// <summary>
/// Mixtral (MixtralForCausalLM): Mistral's attention (RMSNorm, rotate-half rotary, grouped-query heads
/// loaded as _W_K/_W_V) with a mixture-of-experts MLP: block_sparse_moe.gate is the router, and expert
/// e's w1, w3, w2 are TransformerLens's W_gate, W_in, W_out (as nn.Linear weights [out, in]).
/// Hugging Face renormalises the top-k routing weights and TransformerLens 3.5.1 does not; a Hugging Face
/// checkpoint gives Hugging Face's numbers, so norm_topk_prob is true here (docs/model-families.md).
/// </summary>
public sealed class MixtralArchitecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => ["MixtralForCausalLM"];
    public override string BasePrefix => "model.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        ReadAttentionShape(cfg, hf, 4096);
        cfg.NKeyValueHeads = hf.Int("num_key_value_heads", 8); // always grouped (_W_K/_W_V), 8 when the key is absent
        cfg.DMlp = hf.Int("intermediate_size", 14336);
        cfg.NLayers = hf.Int("num_hidden_layers", 32);
        cfg.NCtx = hf.Int("max_position_embeddings", 4096 * 32);
        cfg.DVocab = hf.Int("vocab_size", 32000);
        cfg.ActFn = hf.String("hidden_act", "silu");
        cfg.Eps = hf.Double("rms_norm_eps", 1e-5);
        cfg.NormalizationType = "RMS";
        cfg.PositionalEmbeddingType = "rotary";
        cfg.RotaryDim = cfg.DHead;
        cfg.RotaryBase = hf.Double("rope_theta", 1e6);
        cfg.GatedMlp = true;
        cfg.NumExperts = hf.Int("num_local_experts", 8);
        cfg.ExpertsPerToken = hf.Int("num_experts_per_tok", 2);
        cfg.NormTopkProb = true; // MixtralSparseMoeBlock always renormalises the top-k weights
        cfg.TieWordEmbeddings = hf.Bool("tie_word_embeddings", false);
        // HF applies sliding_window when it is set (TransformerLens ignores it); null (Mixtral 8x7B) means none.
        if (hf.IntOrNull("sliding_window") is int window and > 0)
        {
            cfg.UseLocalAttn = true;
            cfg.WindowSize = window;
            cfg.AttnTypes = Enumerable.Repeat("local", cfg.NLayers).ToArray();
        }
        RefuseRopeScaling(hf);
        return cfg;
    }

    /// <summary>Scaled rotary frequencies are not computed by this model: refused rather than ignored.</summary>
    internal static void RefuseRopeScaling(HfConfig hf)
    {
        if (hf.Object("rope_scaling") is not { } scaling) return;
        var kind = scaling["rope_type"]?.GetValue<string>() ?? scaling["type"]?.GetValue<string>() ?? "default";
        if (kind != "default")
            throw new CheckpointException($"{hf.Source}: rope_scaling of type '{kind}' is not supported " +
                $"for {hf.Architecture} (Lens computes unscaled rotary here; use a checkpoint without rope_scaling)");
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads, kv = cfg.KvHeads, experts = cfg.NumExperts!.Value, f = cfg.DMlp!.Value;
        yield return W("embed.W_E", t => ckpt.Load("model.embed_tokens.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"model.layers.{l}.", a = h + "self_attn.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "input_layernorm.weight", t));
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "q_proj.weight", t), n));
            yield return W(b + "attn._W_K", t => InputHeads(ckpt.Load(a + "k_proj.weight", t), kv));
            yield return W(b + "attn._W_V", t => InputHeads(ckpt.Load(a + "v_proj.weight", t), kv));
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "o_proj.weight", t), n));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "post_attention_layernorm.weight", t));
            // The hub's files store block_sparse_moe.*; transformers 5 saves mlp.gate and fused mlp.experts tensors.
            bool fused = ckpt.Contains(h + "mlp.experts.gate_up_proj");
            string moe = fused ? h + "mlp." : h + "block_sparse_moe.";
            yield return W(b + "mlp.W_gate.weight", t => ckpt.Load(moe + "gate.weight", t));
            foreach (var w in ExpertWeights(ckpt, moe, b, experts, f, "w1", "w3", "w2")) yield return w;
        }
        yield return W("ln_final.w", t => ckpt.Load("model.norm.weight", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
