using Lens.Components;

namespace Lens.Pretrained;

/// <summary>
/// OLMoE (OlmoeForCausalLM), converted as TransformerLens's convert_olmoe_weights and its OlmoeForCausalLM
/// config mapping do: RMSNorm, rotate-half rotary over the whole head, grouped-query heads (always stored as
/// _W_K/_W_V), a q/k RMSNorm over the whole projection (attn.q_norm.w [d_model], attn.k_norm.w
/// [kv_heads·d_head]; the attention keys this on original_architecture, as TransformerLens does), and a
/// mixture of experts with no shared expert: mlp.gate is the router and expert e's gate_proj, up_proj,
/// down_proj are W_gate, W_in, W_out (nn.Linear weights [out, in]); top-k routing renormalised only when
/// norm_topk_prob, as Hugging Face and TransformerLens both read it from the config. clip_qkv, attention
/// biases, head_dim ≠ hidden_size / heads and rope scaling are refused, naming the key.
/// </summary>
public sealed class OlmoeArchitecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => [Attention.OlmoeArchitecture];
    public override string BasePrefix => "model.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        int d = hf.Int("hidden_size", 2048), heads = hf.Int("num_attention_heads", 16);
        if (heads < 1 || d % heads != 0)
            throw new CheckpointException($"{hf.Source}: 'hidden_size' = {d} must be a multiple of " +
                $"'num_attention_heads' = {heads} (OLMoE's head_dim is their quotient)");
        if (hf.IntOrNull("head_dim") is int headDim && headDim != d / heads)
            throw new CheckpointException($"{hf.Source}: 'head_dim' = {headDim} is not supported for OLMoE (Hugging " +
                $"Face and TransformerLens use hidden_size / num_attention_heads = {d / heads})");
        cfg.DModel = d;
        cfg.NHeads = heads;
        cfg.DHead = d / heads;
        cfg.NKeyValueHeads = hf.IntOrNull("num_key_value_heads") ?? heads;
        cfg.DMlp = hf.Int("intermediate_size", 2048);
        cfg.NLayers = hf.Int("num_hidden_layers", 16);
        cfg.NCtx = hf.Int("max_position_embeddings", 4096);
        cfg.Eps = hf.Double("rms_norm_eps", 1e-5);
        cfg.DVocab = hf.Int("vocab_size", 50304);
        cfg.ActFn = hf.String("hidden_act", "silu");
        cfg.NumExperts = hf.Int("num_experts", 64);
        cfg.ExpertsPerToken = hf.Int("num_experts_per_tok", 8);
        cfg.NormTopkProb = hf.Bool("norm_topk_prob", false);
        cfg.RotaryBase = hf.Double("rope_theta", 10000);
        cfg.TieWordEmbeddings = hf.Bool("tie_word_embeddings", false);
        cfg.InitializerRange = hf.Double("initializer_range", 0.02);
        cfg.PositionalEmbeddingType = "rotary";
        cfg.RotaryDim = cfg.DHead;
        cfg.GatedMlp = true;
        cfg.NormalizationType = "RMS";
        if (hf.Has("clip_qkv"))
            throw new CheckpointException($"{hf.Source}: 'clip_qkv' = {hf["clip_qkv"]!.ToJsonString()} is not " +
                $"supported (Hugging Face clamps q, k and v to it; TransformerLens's conversion ignores it; use null)");
        if (hf.Bool("attention_bias", false))
            throw new CheckpointException($"{hf.Source}: 'attention_bias' = true is not supported for OLMoE " +
                $"(TransformerLens's conversion drops the biases)");
        if (hf.Int("num_shared_experts", 0) != 0)
            throw new CheckpointException(
                $"{hf.Source}: 'num_shared_experts' is not supported (OLMoE has no shared experts)");
        RefuseRopeScaling(hf);
        return cfg;
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads, kv = cfg.KvHeads, experts = cfg.NumExperts!.Value, f = cfg.DMlp!.Value;
        foreach (var name in ckpt.Names)
            if (name.EndsWith(".bias", StringComparison.Ordinal))
                throw new CheckpointException($"{ckpt.Folder}: tensor '{name}' is a bias, which OLMoE has none of " +
                    $"(TransformerLens's conversion would drop it)");
        yield return W("embed.W_E", t => ckpt.Load("model.embed_tokens.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"model.layers.{l}.", a = h + "self_attn.", b = $"blocks.{l}.", moe = h + "mlp.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "input_layernorm.weight", t));
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "q_proj.weight", t), n));
            yield return W(b + "attn._W_K", t => InputHeads(ckpt.Load(a + "k_proj.weight", t), kv));
            yield return W(b + "attn._W_V", t => InputHeads(ckpt.Load(a + "v_proj.weight", t), kv));
            yield return W(b + "attn.q_norm.w", t => ckpt.Load(a + "q_norm.weight", t));
            yield return W(b + "attn.k_norm.w", t => ckpt.Load(a + "k_norm.weight", t));
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "o_proj.weight", t), n));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "post_attention_layernorm.weight", t));
            yield return W(b + "mlp.W_gate.weight", t => ckpt.Load(moe + "gate.weight", t));
            foreach (var w in ExpertWeights(ckpt, moe, b, experts, f, "gate_proj", "up_proj", "down_proj"))
                yield return w;
        }
        yield return W("ln_final.w", t => ckpt.Load("model.norm.weight", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
