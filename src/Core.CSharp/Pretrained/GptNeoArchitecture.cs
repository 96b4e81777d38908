using System.Text.Json.Nodes;

namespace Lens.Pretrained;

/// <summary>
/// GPT-Neo (GPTNeoForCausalLM: gpt-neo-125M, the TinyStories models). Layers alternate global and
/// local attention (a window of <c>window_size</c> keys, the query's own included), and attention
/// scores are NOT divided by √d_head (use_attn_scale false). q/k/v/out_proj are nn.Linear without
/// q/k/v biases; W_U is lm_head.weightᵀ (tied to wte).
/// </summary>
public sealed class GptNeoArchitecture : HfArchitecture
{
    public override IReadOnlyList<string> Names => ["GPTNeoForCausalLM"];
    public override string BasePrefix => "transformer.";

    public override HookedTransformerConfig Config(HfConfig hf, string architecture)
    {
        var cfg = Base(architecture);
        int d = hf.Int("hidden_size", 2048), heads = hf.Int("num_heads", 16), layers = hf.Int("num_layers", 24);
        cfg.DModel = d;
        cfg.DHead = d / heads;
        cfg.NHeads = heads;
        // TransformerLens uses 4·hidden_size, which is what HF does when intermediate_size is null.
        cfg.DMlp = hf.IntOrNull("intermediate_size") ?? 4 * d;
        cfg.NLayers = layers;
        cfg.NCtx = hf.Int("max_position_embeddings", 2048);
        cfg.Eps = hf.Double("layer_norm_epsilon", 1e-5);
        cfg.DVocab = hf.Int("vocab_size", 50257);
        cfg.AttnTypes = AttentionLayers(hf, layers);
        cfg.ActFn = hf.String("activation_function", "gelu_new");
        cfg.UseAttnScale = false;
        cfg.UseLocalAttn = true;
        cfg.WindowSize = hf.Int("window_size", 256);
        cfg.ScaleAttnByInverseLayerIdx = false;
        cfg.NormalizationType = "LN";
        return cfg;
    }

    /// <summary>attention_layers (["global","local",...]), or HF's compact attention_types [[["global","local"], 12]]
    /// expanded.</summary>
    static string[] AttentionLayers(HfConfig hf, int layers)
    {
        string[] result;
        if (hf["attention_layers"] is JsonArray list)
            result = list.Select(x => x?.GetValue<string>() ?? "").ToArray();
        else
        {
            var types =
                hf["attention_types"] as JsonArray ?? JsonNode.Parse("""[[["global","local"],12]]""")!.AsArray();
            var expanded = new List<string>();
            foreach (var item in types)
            {
                if (item is not JsonArray { Count: 2 } pair || pair[0] is not JsonArray pattern)
                    throw new CheckpointException(
                        $"{hf.Source}: attention_types entries must be [[kinds...], repeats]");
                int repeats = pair[1]!.GetValue<int>();
                for (int r = 0; r < repeats; r++) expanded.AddRange(pattern.Select(x => x!.GetValue<string>()));
            }
            result = [.. expanded];
        }
        if (result.Length != layers)
            throw new CheckpointException(
                $"{hf.Source}: {result.Length} attention layer kinds for num_layers = {layers}");
        if (result.FirstOrDefault(k => ConfigChoices.AttentionKind.Find(k) is null) is string bad)
            throw new CheckpointException($"{hf.Source}: unknown attention kind '{bad}' (global or local)");
        return result;
    }

    public override IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg)
    {
        int n = cfg.NHeads;
        yield return W("embed.W_E", t => ckpt.Load("transformer.wte.weight", t));
        // TinyStories checkpoints store more positions than n_ctx: keep the first n_ctx, as TransformerLens does.
        yield return W("pos_embed.W_pos", t =>
        {
            var w = ckpt.Load("transformer.wpe.weight", t);
            return w.shape[0] > cfg.NCtx ? w.narrow(0, 0, cfg.NCtx) : w;
        });
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string h = $"transformer.h.{l}.", a = h + "attn.attention.", b = $"blocks.{l}.";
            yield return W(b + "ln1.w", t => ckpt.Load(h + "ln_1.weight", t));
            yield return W(b + "ln1.b", t => ckpt.Load(h + "ln_1.bias", t));
            yield return W(b + "attn.W_Q", t => InputHeads(ckpt.Load(a + "q_proj.weight", t), n));
            yield return W(b + "attn.W_K", t => InputHeads(ckpt.Load(a + "k_proj.weight", t), n));
            yield return W(b + "attn.W_V", t => InputHeads(ckpt.Load(a + "v_proj.weight", t), n));
            yield return W(b + "attn.W_O", t => OutputHeads(ckpt.Load(a + "out_proj.weight", t), n));
            yield return W(b + "attn.b_O", t => ckpt.Load(a + "out_proj.bias", t));
            yield return W(b + "ln2.w", t => ckpt.Load(h + "ln_2.weight", t));
            yield return W(b + "ln2.b", t => ckpt.Load(h + "ln_2.bias", t));
            yield return W(b + "mlp.W_in", t => ckpt.Load(h + "mlp.c_fc.weight", t).t());
            yield return W(b + "mlp.b_in", t => ckpt.Load(h + "mlp.c_fc.bias", t));
            yield return W(b + "mlp.W_out", t => ckpt.Load(h + "mlp.c_proj.weight", t).t());
            yield return W(b + "mlp.b_out", t => ckpt.Load(h + "mlp.c_proj.bias", t));
        }
        yield return W("ln_final.w", t => ckpt.Load("transformer.ln_f.weight", t));
        yield return W("ln_final.b", t => ckpt.Load("transformer.ln_f.bias", t));
        var unembed = ckpt.Contains("lm_head.weight") ? "lm_head.weight" : "transformer.wte.weight";
        yield return W("unembed.W_U", t => ckpt.Load(unembed, t).t());
    }
}
