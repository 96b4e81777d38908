using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>TransformerLens's sample_logits: greedy, temperature, top-k and top-p over the last position's
/// logits.</summary>
public static class Sampling
{
    /// <summary>One token id per row of logits [batch, d_vocab] → int64 [batch].</summary>
    public static Tensor SampleLogits(Tensor logits, GenerationOptions options, Generator? generator)
    {
        options.Validate();
        using var scope = NewDisposeScope();
        if (options.IsGreedy) return logits.argmax(-1).MoveToOuterDisposeScope();
        var filtered = RestrictSupport(logits.to(ScalarType.Float32) / options.Temperature, options.TopK, options.TopP);
        var probs = filtered.softmax(-1);
        return multinomial(probs, 1, generator: generator).squeeze(-1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sets to −∞ every logit outside the top k and then outside the smallest set of most likely tokens
    /// whose probability reaches p (the token that crosses p is kept, so at least one always is).
    /// </summary>
    public static Tensor RestrictSupport(Tensor logits, int? topK, double? topP)
    {
        using var scope = NewDisposeScope();
        var result = logits;
        if (topK is int k && k < logits.shape[^1])
        {
            var (top, _) = result.topk(k, -1);
            result = result.masked_fill(result < top.narrow(-1, k - 1, 1), float.NegativeInfinity);
        }
        if (topP is double p && p < 1.0)
        {
            var (sorted, order) = result.sort(-1, descending: true);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            // Remove a token when the more likely tokens before it already exceed p (TransformerLens's shift by one).
            var before =
                cat([zeros_like(cumulative.narrow(-1, 0, 1)), cumulative.narrow(-1, 0, cumulative.shape[^1] - 1)], -1);
            var removeSorted = before > p;
            var remove = zeros_like(removeSorted).scatter(-1, order, removeSorted);
            result = result.masked_fill(remove, float.NegativeInfinity);
        }
        return (ReferenceEquals(result, logits) ? logits.clone() : result).MoveToOuterDisposeScope();
    }
}
