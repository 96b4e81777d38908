using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// TransformerLens's <c>head_detector.detect_head</c>: how well each head's attention pattern on a
/// sequence matches a detection pattern D [pos, pos] (lower triangular). Named patterns:
/// <c>previous_token_head</c> D[i, i−1] = 1; <c>duplicate_token_head</c> D[i, j] = 1 iff j &lt; i and
/// tok[j] = tok[i]; <c>induction_head</c> D[i, j] = 1 iff 1 ≤ j ≤ i and tok[j−1] = tok[i] with j−1 &lt; i
/// (the duplicate pattern shifted right one column, column 0 zeroed). Error measures:
/// "mul" score = Σ(P∘D)/ΣP, the fraction of attention on the detection positions;
/// "abs" score = 1 − round(mean|P − D|·pos, 3) over the full [pos, pos] square.
/// excludeBos zeroes column 0 and excludeCurrentToken the diagonal (of P for "mul", of |P − D| for
/// "abs") before the sums. Heads not asked for score −1.
/// </summary>
public static class HeadDetector
{
    public static readonly IReadOnlyList<string> HeadNames =
        ["previous_token_head", "duplicate_token_head", "induction_head"];

    /// <summary>Scores [n_layers, n_heads] of one sequence (tokens [pos] or [1, pos]) against a named
    /// pattern.</summary>
    public static Tensor DetectHead(HookedTransformer model, Tensor tokens, string detectionPattern,
        IEnumerable<(int Layer, int Head)>? heads = null, bool excludeBos = false, bool excludeCurrentToken = false,
        string errorMeasure = "mul")
    {
        using var scope = NewDisposeScope();
        var seq = Sequence(tokens);
        var pattern = Pattern(detectionPattern, seq);
        return DetectHead(model, seq, pattern, heads, excludeBos, excludeCurrentToken, errorMeasure)
            .MoveToOuterDisposeScope();
    }

    /// <summary>Scores of one text, tokenised by the model's tokenizer as <c>model.ToTokens</c> does (BOS prepended by
    /// default, as TransformerLens's to_tokens).</summary>
    public static Tensor DetectHead(HookedTransformer model, string text, string detectionPattern,
        IEnumerable<(int Layer, int Head)>? heads = null, bool excludeBos = false, bool excludeCurrentToken = false,
        string errorMeasure = "mul")
    {
        using var tokens = model.ToTokens(text);
        return DetectHead(model, tokens, detectionPattern, heads, excludeBos, excludeCurrentToken, errorMeasure);
    }

    /// <summary>Scores of one text against a user pattern [pos, pos] (pos counts the BOS token when
    /// prepended).</summary>
    public static Tensor DetectHead(HookedTransformer model, string text, Tensor detectionPattern,
        IEnumerable<(int Layer, int Head)>? heads = null, bool excludeBos = false, bool excludeCurrentToken = false,
        string errorMeasure = "mul")
    {
        using var tokens = model.ToTokens(text);
        return DetectHead(model, tokens, detectionPattern, heads, excludeBos, excludeCurrentToken, errorMeasure);
    }

    /// <summary>The mean of the scores of several texts against a named pattern.</summary>
    public static Tensor DetectHead(HookedTransformer model, IEnumerable<string> texts, string detectionPattern,
        IEnumerable<(int Layer, int Head)>? heads = null, bool excludeBos = false, bool excludeCurrentToken = false,
        string errorMeasure = "mul")
    {
        var headList = heads?.ToList();
        return Average(texts.Select(t =>
            DetectHead(model, t, detectionPattern, headList, excludeBos, excludeCurrentToken, errorMeasure)));
    }

    /// <summary>
    /// The mean of the scores of several sequences against a named pattern (built for each sequence).
    /// Unlike TransformerLens (whose list path drops them), the options apply to every sequence.
    /// </summary>
    public static Tensor DetectHead(HookedTransformer model, IEnumerable<Tensor> sequences, string detectionPattern,
        IEnumerable<(int Layer, int Head)>? heads = null, bool excludeBos = false, bool excludeCurrentToken = false,
        string errorMeasure = "mul")
    {
        var headList = heads?.ToList();
        return Average(sequences.Select(s =>
            DetectHead(model, s, detectionPattern, headList, excludeBos, excludeCurrentToken, errorMeasure)));
    }

    /// <summary>The mean of the scores of several sequences against one user pattern [pos, pos].</summary>
    public static Tensor DetectHead(HookedTransformer model, IEnumerable<Tensor> sequences, Tensor detectionPattern,
        IEnumerable<(int Layer, int Head)>? heads = null, bool excludeBos = false, bool excludeCurrentToken = false,
        string errorMeasure = "mul")
    {
        var headList = heads?.ToList();
        return Average(sequences.Select(s =>
            DetectHead(model, s, detectionPattern, headList, excludeBos, excludeCurrentToken, errorMeasure)));
    }

    /// <summary>Scores [n_layers, n_heads] of one sequence against a user detection pattern [pos, pos] (lower
    /// triangular).</summary>
    public static Tensor DetectHead(HookedTransformer model, Tensor tokens, Tensor detectionPattern,
        IEnumerable<(int Layer, int Head)>? heads = null, bool excludeBos = false, bool excludeCurrentToken = false,
        string errorMeasure = "mul")
    {
        if (errorMeasure is not ("mul" or "abs"))
            throw new ArgumentException($"errorMeasure must be \"mul\" or \"abs\", not \"{errorMeasure}\"");
        var cfg = model.Config;
        var seq = Sequence(tokens);
        long n = seq.shape[0];
        if (n < 2 || n > cfg.NCtx)
            throw new ArgumentException($"the sequence must have 2 to n_ctx = {cfg.NCtx} tokens, got {n}");
        using var scope = NewDisposeScope();
        if (detectionPattern.dim() != 2 || detectionPattern.shape[0] != n || detectionPattern.shape[1] != n)
            throw new ArgumentException($"the detection pattern must be [{n}, {n}] (the sequence length), got " +
                $"[{string.Join(", ", detectionPattern.shape)}]");
        var detection = detectionPattern.to(ScalarType.Float32, model.Device);
        if (detection.triu(1).count_nonzero().item<long>() != 0)
            throw new ArgumentException(
                "the detection pattern must be lower triangular (a query cannot attend to later keys)");

        var selected = new Dictionary<int, List<int>>();
        if (heads is null) for (int l = 0; l < cfg.NLayers; l++) selected[l] = Enumerable.Range(0, cfg.NHeads).ToList();
        else foreach (var (l, h) in heads)
        {
            Circuits.Check(model, l, h);
            if (!selected.TryGetValue(l, out var list)) selected[l] = list = [];
            list.Add(h);
        }

        var scores = new float[cfg.NLayers * cfg.NHeads];
        Array.Fill(scores, -1f);
        using var run = model.RunWithCache(seq.unsqueeze(0), ReturnType.None,
            HookedTransformer.NamesFilter("blocks.*.attn.hook_pattern"), removeBatchDim: true);
        foreach (var (layer, layerHeads) in selected)
        {
            var patterns = run.Cache["pattern", layer]; // [head, query, key]
            foreach (var head in layerHeads)
                scores[layer * cfg.NHeads + head] = Similarity(patterns[head].to(ScalarType.Float32), detection,
                    excludeBos, excludeCurrentToken, errorMeasure);
        }
        return tensor(scores, [cfg.NLayers, cfg.NHeads]).to(HookedTransformer.DtypeOf(cfg.Dtype))
            .MoveToOuterDisposeScope();
    }

    /// <summary>The named detection pattern [pos, pos] (float32) of a sequence.</summary>
    public static Tensor Pattern(string name, Tensor tokens) => name switch
    {
        "previous_token_head" => PreviousTokenPattern(tokens),
        "duplicate_token_head" => DuplicateTokenPattern(tokens),
        "induction_head" => InductionPattern(tokens),
        _ => throw new ArgumentException(
            $"detection pattern must be a tensor or one of {string.Join(", ", HeadNames)}; got '{name}'"),
    };

    /// <summary>D[i, i−1] = 1.</summary>
    public static Tensor PreviousTokenPattern(Tensor tokens)
    {
        long n = Sequence(tokens).shape[0];
        using var ones = torch.ones(n - 1);
        return diag(ones, -1);
    }

    /// <summary>D[i, j] = 1 iff j &lt; i and tok[j] = tok[i].</summary>
    public static Tensor DuplicateTokenPattern(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var seq = Sequence(tokens).cpu();
        var same = seq.unsqueeze(1).eq(seq.unsqueeze(0)).to(ScalarType.Float32);
        return same.tril(-1).MoveToOuterDisposeScope();
    }

    /// <summary>The duplicate pattern shifted one column right, column 0 zero: D[i, j] = 1 iff 1 ≤ j ≤ i and tok[j−1] =
    /// tok[i], j−1 &lt; i.</summary>
    public static Tensor InductionPattern(Tensor tokens)
    {
        using var scope = NewDisposeScope();
        var duplicate = DuplicateTokenPattern(tokens);
        var shifted = duplicate.roll(1, 1);
        shifted.select(1, 0).zero_();
        return shifted.tril().MoveToOuterDisposeScope();
    }

    static float Similarity(Tensor pattern, Tensor detection, bool excludeBos, bool excludeCurrent, string measure)
    {
        using var scope = NewDisposeScope();
        if (measure == "mul")
        {
            var p = pattern.clone();
            if (excludeBos) p.select(1, 0).zero_();
            if (excludeCurrent) p.diagonal(0, 0, 1).zero_();
            return ((p * detection).sum() / p.sum()).item<float>();
        }
        var diff = (pattern - detection).abs();
        long size = diff.shape[0];
        if (excludeBos) diff.select(1, 0).zero_();
        if (excludeCurrent) diff.diagonal(0, 0, 1).zero_();
        double raw = (diff.mean() * size).item<float>();
        return (float)(1 - Math.Round(raw, 3, MidpointRounding.ToEven));
    }

    static Tensor Sequence(Tensor tokens)
    {
        if (tokens.dim() == 2 && tokens.shape[0] == 1) return tokens[0];
        if (tokens.dim() != 1)
            throw new ArgumentException($"head detection takes one sequence ([pos] or [1, pos]), got " +
                $"[{string.Join(", ", tokens.shape)}]; pass several as a list");
        return tokens;
    }

    static Tensor Average(IEnumerable<Tensor> scores)
    {
        using var scope = NewDisposeScope();
        var all = scores.ToArray();
        if (all.Length == 0) throw new ArgumentException("no sequences given");
        return torch.stack(all, 0).mean([0L]).MoveToOuterDisposeScope();
    }
}
