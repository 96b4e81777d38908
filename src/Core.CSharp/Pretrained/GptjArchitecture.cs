namespace Lens.Pretrained;

/// <summary>
/// GPT-J (GPTJForCausalLM): attention and MLP read the same ln_1 output and are added to the residual
/// together (TransformerLens's parallel_attn_mlp, with ln_1 loaded as both ln1 and ln2); rotary on the
/// first rotary_dim dims of each head with adjacent pairs (rotate_every_two: rotary_adjacent_pairs);
/// q/k/v/out_proj without biases; lm_head has a bias (b_U).
/// </summary>
public sealed class GptjArchitecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => ["GPTJForCausalLM"];
    public override string BasePrefix => "transformer.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        int d = hf.Int("n_embd", 4096), heads = hf.Int("n_head", 16);
        cfg.DModel = d;
        cfg.DHead = d / heads;
        cfg.NHeads = heads;
        // TransformerLens uses 4·n_embd; HF's n_inner, when set, is what the checkpoint's fc_in holds.
        cfg.DMlp = hf.IntOrNull("n_inner") ?? 4 * d;
        cfg.NLayers = hf.Int("n_layer", 28);
        cfg.NCtx = hf.Int("n_positions", 2048);
        cfg.Eps = hf.Double("layer_norm_epsilon", 1e-5);
        cfg.DVocab = hf.Int("vocab_size", 50400);
        cfg.ActFn = hf.String("activation_function", "gelu_new");
        cfg.UseAttnScale = true;
        cfg.UseLocalAttn = false;
        cfg.ScaleAttnByInverseLayerIdx = false;
        cfg.ParallelAttnMlp = true;
        cfg.PositionalEmbeddingType = "rotary";
        cfg.RotaryDim = hf.IntOrNull("rotary_dim"); // null: the whole head, as HF does
        cfg.RotaryAdjacentPairs = true;
        cfg.NormalizationType = "LN";
        return cfg;
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads;
        yield return W("embed.W_E", t => ckpt.Load("transformer.wte.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"transformer.h.{l}.", a = h + "attn.", b = $"blocks.{l}.";
            // One LayerNorm feeds both attention and MLP: ln2 is a copy of ln_1.
            foreach (var ln in new[] { "ln1", "ln2" })
            {
                yield return W($"{b}{ln}.w", t => ckpt.Load(h + "ln_1.weight", t));
                yield return W($"{b}{ln}.b", t => ckpt.Load(h + "ln_1.bias", t));
            }
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "q_proj.weight", t), n));
            yield return W(b + "attn.W_K", t => InputHeads(ckpt.Load(a + "k_proj.weight", t), n));
            yield return W(b + "attn.W_V", t => InputHeads(ckpt.Load(a + "v_proj.weight", t), n));
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "out_proj.weight", t), n));
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.fc_in.weight", t).t());
            yield return W(b + "mlp.b_in", t => ckpt.Load(h + "mlp.fc_in.bias", t));
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.fc_out.weight", t).t());
            yield return W(b + "mlp.b_out", t => ckpt.Load(h + "mlp.fc_out.bias", t));
        }
        yield return W("ln_final.w", t => ckpt.Load("transformer.ln_f.weight", t));
        yield return W("ln_final.b", t => ckpt.Load("transformer.ln_f.bias", t));
        yield return W("unembed.W_U", t => ckpt.Load("lm_head.weight", t).t());
        yield return W("unembed.b_U", t => ckpt.Load("lm_head.bias", t));
    }
}
