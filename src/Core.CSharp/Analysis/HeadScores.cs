using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Stripe scores of attention heads on repeated random tokens (the ARENA / TransformerLens-demo
/// recipe): run the model on rows [BOS] t₁..tₙ t₁..tₙ, take each head's attention pattern
/// [query, key] and average one diagonal over its whole length and over the batch:
/// induction = offset −(n−1) (a query in the second copy attends to the token after its earlier
/// occurrence), previous-token = offset −1, duplicate-token = offset −n (the earlier occurrence itself).
/// Result [n_layers, n_heads]. With a BOS and 2 copies the induction diagonal has n + 2 entries of
/// which the last n are the induction positions: a perfect induction head scores n/(n+2).
/// </summary>
public static class HeadScores
{
    public static HeadScoreTable Induction(HookedTransformer model, RepeatedTokens tokens) =>
        Induction(model, tokens.Tokens, tokens.Length);

    /// <summary>Mean attention on the diagonal −(n−1), for repeated blocks of length n.</summary>
    public static HeadScoreTable Induction(HookedTransformer model, Tensor tokens, int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"block length must be positive, got {n}");
        return Stripe(model, tokens, -(n - 1), "induction");
    }

    public static HeadScoreTable PreviousToken(HookedTransformer model, RepeatedTokens tokens) =>
        PreviousToken(model, tokens.Tokens);

    /// <summary>Mean attention on the diagonal −1 (queries 1.. attending to the token before).</summary>
    public static HeadScoreTable PreviousToken(HookedTransformer model, Tensor tokens) =>
        Stripe(model, tokens, -1, "previous-token");

    public static HeadScoreTable DuplicateToken(HookedTransformer model, RepeatedTokens tokens) =>
        DuplicateToken(model, tokens.Tokens, tokens.Length);

    /// <summary>Mean attention on the diagonal −n, for repeated blocks of length n.</summary>
    public static HeadScoreTable DuplicateToken(HookedTransformer model, Tensor tokens, int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"block length must be positive, got {n}");
        return Stripe(model, tokens, -n, "duplicate-token");
    }

    /// <summary>
    /// Induction scores on any rows that are a block repeated ([BOS] a b c a b c, or a b c a b c), the block length
    /// detected per row (<see cref="RepeatPeriod.Detect"/>); rows with different lengths are scored apart and averaged
    /// row by row. On the rows of a <see cref="RepeatedTokens"/> it equals
    /// <see cref="Induction(HookedTransformer, RepeatedTokens)"/>.
    /// </summary>
    public static HeadScoreTable Induction(HookedTransformer model, Tensor tokens) =>
        ByPeriod(model, tokens, "induction", n =>
        n >= 2
            ? -(n - 1)
            : throw new ArgumentException(
                "a row of one token repeated has no induction stripe (the block must be at least 2 tokens)"));

    /// <summary>Duplicate-token scores on any rows that are a block repeated, the block length detected per
    /// row.</summary>
    public static HeadScoreTable DuplicateToken(HookedTransformer model, Tensor tokens) =>
        ByPeriod(model, tokens, "duplicate-token", n => -n);

    static HeadScoreTable ByPeriod(HookedTransformer model, Tensor tokens, string kind, Func<int, int> offsetOf)
    {
        if (tokens.dim() is not (1 or 2))
            throw new ArgumentException(
                $"tokens must be [batch, pos] or [pos], got [{string.Join(", ", tokens.shape)}]");
        var periods = RepeatPeriod.OfRows(tokens);
        var groups = Enumerable.Range(0, periods.Count).GroupBy(r => periods[r].Length).ToList();
        if (groups.Count == 1) return Stripe(model, tokens, offsetOf(groups[0].Key), kind);
        using var scope = NewDisposeScope();
        var rows = tokens.dim() == 1 ? tokens.unsqueeze(0) : tokens;
        Tensor? sum = null;
        foreach (var group in groups)
        {
            using var index = torch.tensor(group.Select(r => (long)r).ToArray(), device: rows.device);
            using var table = Stripe(model, rows.index_select(0, index), offsetOf(group.Key), kind);
            var weighted = table.Scores * group.Count();
            sum = sum is null ? weighted : sum + weighted;
        }
        var scores = (sum! / periods.Count).DetachFromDisposeScope();
        return new HeadScoreTable(kind, scores, rows.clone().DetachFromDisposeScope());
    }

    /// <summary>Mean of every head's pattern diagonal at <paramref name="offset"/> (key − query), over the diagonal and
    /// the batch.</summary>
    public static HeadScoreTable Stripe(HookedTransformer model, Tensor tokens, int offset, string kind = "stripe")
    {
        if (tokens.dim() is not (1 or 2))
            throw new ArgumentException(
                $"tokens must be [batch, pos] or [pos], got [{string.Join(", ", tokens.shape)}]");
        long pos = tokens.shape[^1];
        if (offset >= 0 || -offset >= pos)
            throw new ArgumentException($"diagonal offset {offset} has no entries below the diagonal of " +
                $"a {pos}-token pattern (it must be in [-{pos - 1}, -1])");
        using var scope = NewDisposeScope();
        if (tokens.dim() == 1) tokens = tokens.unsqueeze(0);
        using var run =
            model.RunWithCache(tokens, ReturnType.None, HookedTransformer.NamesFilter("blocks.*.attn.hook_pattern"));
        var perLayer = new List<Tensor>();
        for (int l = 0; l < model.Config.NLayers; l++)
        {
            var pattern = run.Cache["pattern", l];                        // [batch, head, query, key]
            var stripe = pattern.diagonal(offset, -2, -1);                // [batch, head, entries]
            perLayer.Add(stripe.to(ScalarType.Float32).mean([0L, 2L]));
        }
        var scores = torch.stack(perLayer.ToArray(), 0).DetachFromDisposeScope();
        var recorded = tokens.clone().DetachFromDisposeScope();
        return new HeadScoreTable(kind, scores, recorded);
    }
}
