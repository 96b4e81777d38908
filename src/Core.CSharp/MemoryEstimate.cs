namespace Lens;

/// <summary>
/// Estimates of the memory a model and a forward pass take, and the memory the machine has free, so that a model or
/// an experiment too large for the machine is refused before it starts instead of exhausting memory part-way.
/// Estimates count the large tensors only (weights, activations per token, attention patterns, logits); they are
/// upper bounds of the same order as what a run measures, not exact figures.
/// </summary>
public static class MemoryEstimate
{
    /// <summary>Environment variable: a memory budget in bytes (suffix K, M or G allowed) below what the machine has
    /// free.</summary>
    public const string LimitVariable = "LENS_MEMORY_LIMIT";

    /// <summary>
    /// Bytes the machine can still give this process: /proc/meminfo's MemAvailable on Linux, bounded by the
    /// runtime's limit (a container's) and by <see cref="LimitVariable"/> when set.
    /// </summary>
    public static long AvailableBytes()
    {
        long limit = Math.Min(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, Budget() ?? long.MaxValue);
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], out var kib))
                    return Math.Min(limit, kib * 1024);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return limit;
    }

    static long? Budget()
    {
        var text = Environment.GetEnvironmentVariable(LimitVariable)?.Trim();
        if (string.IsNullOrEmpty(text)) return null;
        var scale =
            char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1L };
        var digits = scale == 1 ? text : text[..^1];
        return long.TryParse(digits, out var n) && n > 0
            ? n * scale
            : throw new ArgumentException(
                $"{LimitVariable} must be a number of bytes, optionally with K, M or G (as in 8G), not '{text}'");
    }

    /// <summary>Bytes per element of the config's dtype.</summary>
    public static int ElementBytes(HookedTransformerConfig cfg) => cfg.Dtype switch
    {
        "float16" or "bfloat16" or "half" => 2,
        "float64" or "double" => 8,
        _ => 4,
    };

    /// <summary>The parameters' bytes (embeddings, attention, MLP, unembedding), computed in floating point so that no
    /// size overflows.</summary>
    public static double ParameterBytes(HookedTransformerConfig cfg)
    {
        double d = cfg.DModel, heads = cfg.NHeads, kv = cfg.KvHeads, dHead = cfg.DHead,
            mlp = cfg.AttnOnly ? 0 : cfg.DMlp ?? 4.0 * d;
        double embeddings = (double)cfg.DVocab * d
            + (cfg.PositionalEmbedding == PositionalEmbeddingKind.Rotary ? 0 : (double)cfg.NCtx * d)
            + d * cfg.DVocabOut;
        // A mixture of experts holds num_experts gated MLPs and the router.
        double mlpWeights =
            cfg.NumExperts is int experts ? experts * (3 * d * mlp + d) : (cfg.GatedMlp ? 3 : 2) * d * mlp;
        double layer = 2 * heads * d * dHead + 2 * kv * d * dHead + mlpWeights;
        return (embeddings + cfg.NLayers * layer) * ElementBytes(cfg);
    }

    /// <summary>
    /// The activations' bytes of one forward on [batch, positions] tokens: every layer's when all are cached (a
    /// full cache), else one layer's working set; plus the logits and their log-softmax.
    /// </summary>
    public static double ForwardBytes(HookedTransformerConfig cfg, long batch, long positions, bool cacheEveryLayer)
    {
        double tokens = (double)batch * positions;
        double d = cfg.DModel, heads = cfg.NHeads, dHead = cfg.DHead, mlp = cfg.AttnOnly ? 0 : cfg.DMlp ?? 4.0 * d;
        // Each token passes through experts_per_token gated experts (gate, pre, post) and gets a routing weight per
        // expert.
        double mlpActivations = cfg.ExpertsPerToken is int k ? k * 3 * mlp + cfg.NumExperts!.Value : 2 * mlp;
        double layer =
            tokens * (6 * d + 4 * heads * dHead + mlpActivations) + 2 * (double)batch * heads * positions * positions;
        double logits = 3 * tokens * cfg.DVocabOut;
        return ((cacheEveryLayer ? cfg.NLayers : 1) * layer + 2 * tokens * d + logits) * ElementBytes(cfg);
    }

    /// <summary>"1.2 GiB".</summary>
    public static string Describe(double bytes) => bytes switch
    {
        >= 1L << 40 => $"{bytes / (1L << 40):F1} TiB",
        >= 1 << 30 => $"{bytes / (1 << 30):F1} GiB",
        >= 1 << 20 => $"{bytes / (1 << 20):F1} MiB",
        _ => $"{bytes / 1024:F1} KiB",
    };
}
