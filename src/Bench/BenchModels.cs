using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>The random-weight models the bench builds when no model is named (no download).</summary>
public static class BenchModels
{
    /// <summary>GPT-2 small's shape: 12 layers, d_model 768, 12 heads, d_mlp 3072, vocab 50257, n_ctx 1024, gelu_new,
    /// LayerNorm.</summary>
    public static HookedTransformerConfig Gpt2Small() => new()
    {
        ModelName = "random-gpt2-small", NLayers = 12, DModel = 768, NHeads = 12, DHead = 64, DMlp = 3072,
        DVocab = 50257, NCtx = 1024, ActFn = "gelu_new", NormalizationType = "LN", Seed = 0,
    };

    /// <summary>A small model for the patching sweep and the memory loop: 2 layers × 16 heads, d_model 256.</summary>
    public static HookedTransformerConfig Small() => new()
    {
        ModelName = "random-2l-16h", NLayers = 2, DModel = 256, NHeads = 16, DHead = 16, DMlp = 1024,
        DVocab = 5000, NCtx = 256, ActFn = "gelu_new", NormalizationType = "LN", Seed = 1,
    };

    /// <summary>A tiny model for start-up timing and the per-hook-call cost (compute is negligible next to the
    /// hooks).</summary>
    public static HookedTransformerConfig Tiny() => new()
    {
        ModelName = "random-tiny", NLayers = 2, DModel = 32, NHeads = 4, DHead = 8, DMlp = 64,
        DVocab = 100, NCtx = 64, ActFn = "gelu_new", NormalizationType = "LN", Seed = 2,
    };

    public static HookedTransformer Build(HookedTransformerConfig cfg) => new(cfg);

    /// <summary>Deterministic token ids [batch, pos] below the vocabulary size.</summary>
    public static Tensor Tokens(HookedTransformerConfig cfg, long batch, long pos, int seed = 0)
    {
        using var g = new Generator((ulong)(seed + 1234));
        return randint(0, cfg.DVocab, [batch, pos], dtype: ScalarType.Int64, generator: g);
    }
}
