namespace Lens.Pretrained;

/// <summary>
/// GPT-2 (GPT2LMHeadModel: gpt2, gpt2-medium/large/xl, distilgpt2). HF stores Conv1D weights as
/// [in, out] applied as x W + b, so c_attn [d_model, 3·d_model] splits into q | k | v columns, each
/// "(head d_head)"; W_U is lm_head.weightᵀ, which is tied to wte and usually not stored.
/// </summary>
public sealed class Gpt2Architecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => ["GPT2LMHeadModel"];
    public override string BasePrefix => "transformer.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        int d = hf.Int("n_embd", 768), heads = hf.Int("n_head", 12);
        cfg.DModel = d;
        cfg.DHead = d / heads;
        cfg.NHeads = heads;
        cfg.DMlp = 4 * d;                                   // TransformerLens ignores n_inner
        cfg.NLayers = hf.Int("n_layer", 12);
        cfg.NCtx = hf.IntOrNull("n_ctx") ?? hf.Int("n_positions", 1024); // TransformerLens reads n_ctx
        cfg.Eps = hf.Double("layer_norm_epsilon", 1e-5);
        cfg.DVocab = hf.Int("vocab_size", 50257);
        cfg.ActFn = hf.String("activation_function", "gelu_new");
        cfg.UseAttnScale = true;
        cfg.UseLocalAttn = false;
        cfg.ScaleAttnByInverseLayerIdx = hf.Bool("scale_attn_by_inverse_layer_idx", false);
        cfg.NormalizationType = "LN";
        return cfg;
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int d = cfg.DModel, n = cfg.NHeads;
        yield return W("embed.W_E", t => ckpt.Load("transformer.wte.weight", t));
        yield return W("pos_embed.W_pos", t => ckpt.Load("transformer.wpe.weight", t));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"transformer.h.{l}.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "ln_1.weight", t));
            yield return W(b + "ln1.b", t => ckpt.Load(h + "ln_1.bias", t));
            string[] parts = ["Q", "K", "V"];
            for (int i = 0; i < 3; i++)
            {
                int part = i;
                // c_attn.weight [d, 3d]: columns part·d .. (part+1)·d, split "(head d_head)" → [head, d, d_head].
                yield return W($"{b}attn.W_{parts[part]}",
                    t => ckpt.Load(h + "attn.c_attn.weight", t).narrow(1, part * d, d).view(d, n, -1).permute(1, 0, 2));
                yield return W($"{b}attn.b_{parts[part]}",
                    t => ckpt.Load(h + "attn.c_attn.bias", t).narrow(0, part * d, d).view(n, -1));
            }
            yield return W(b + "attn.W_O", t => ckpt.Load(h + "attn.c_proj.weight", t).view(n, -1, d));
            yield return W(b + "attn.b_O", t => ckpt.Load(h + "attn.c_proj.bias", t));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "ln_2.weight", t));
            yield return W(b + "ln2.b", t => ckpt.Load(h + "ln_2.bias", t));
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.c_fc.weight", t));
            yield return W(b + "mlp.b_in", t => ckpt.Load(h + "mlp.c_fc.bias", t));
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.c_proj.weight", t));
            yield return W(b + "mlp.b_out", t => ckpt.Load(h + "mlp.c_proj.bias", t));
        }
        yield return W("ln_final.w", t => ckpt.Load("transformer.ln_f.weight", t));
        yield return W("ln_final.b", t => ckpt.Load("transformer.ln_f.bias", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : "transformer.wte.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
