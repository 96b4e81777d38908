using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>How many contexts, how wide, how many logit tokens and histogram bins a feature summary holds.</summary>
public sealed record FeatureSummaryOptions
{
    /// <summary>The number of top-activating positions kept.</summary>
    public int TopContexts { get; init; } = 10;
    /// <summary>Tokens shown before each top-activating token.</summary>
    public int Before { get; init; } = 8;
    /// <summary>Tokens shown after it.</summary>
    public int After { get; init; } = 4;
    /// <summary>Promoted and suppressed tokens from the decoder direction's logit weights.</summary>
    public int LogitTokens { get; init; } = 10;
    /// <summary>Equal-width bins of the histogram over the positions where the feature fires (activation &gt;
    /// 0).</summary>
    public int Bins { get; init; } = 20;

    internal void Validate()
    {
        if (TopContexts <= 0) throw new SaeException($"the number of top contexts must be positive, got {TopContexts}");
        if (Before < 0 || After < 0)
            throw new SaeException($"context window sizes must be >= 0, got {Before} before and {After} after");
        if (LogitTokens <= 0) throw new SaeException($"the number of logit tokens must be positive, got {LogitTokens}");
        if (Bins <= 0) throw new SaeException($"the number of histogram bins must be positive, got {Bins}");
    }
}

/// <summary>
/// One top-activating position: its row (counted over all inputs) and position, the activation there,
/// and a window of tokens around it (from <see cref="Start"/>) with the feature's activation at each.
/// </summary>
public sealed record FeatureContext(int Row, int Position, double Activation, int Start, long[] TokenIds,
    string[] Tokens, double[] Activations);

/// <summary>
/// What a feature dashboard shows for one SAE latent over a set of inputs: where it fires most (with
/// context), how its activations are distributed, and the tokens its decoder direction promotes and
/// suppresses (<see cref="SaeFeatures.TopLogitTokens"/>), or why those are not available.
/// </summary>
public sealed record FeatureSummary(
    int Feature, string HookName, long Positions, long Firing, double MaxActivation,
    IReadOnlyList<FeatureContext> TopContexts, double[] BinEdges, long[] BinCounts,
    IReadOnlyList<(TokenWeight Weight, string Token)> Promoted,
    IReadOnlyList<(TokenWeight Weight, string Token)> Suppressed, string? LogitsUnavailable)
{
    /// <summary>
    /// Summaries of several features of one SAE over the inputs (each [batch, pos] token ids), the SAE
    /// spliced in with its error term so the model's numbers are unchanged. Top contexts are the k largest
    /// activations above 0, ties broken by lower row, then lower position.
    /// </summary>
    public static IReadOnlyList<FeatureSummary> Compute(HookedTransformer model, SparseAutoencoder sae,
        IReadOnlyList<int> features, IReadOnlyList<Tensor> inputs, FeatureSummaryOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(inputs);
        options ??= new FeatureSummaryOptions();
        options.Validate();
        if (features.Count == 0) throw new SaeException("a feature summary needs at least one feature");
        foreach (var f in features)
            if (f < 0 || f >= sae.Config.DSae)
                throw new SaeException(
                    $"feature {f} is out of range: the SAE at {sae.HookName} has d_sae {sae.Config.DSae}");
        if (inputs.Count == 0) throw new SaeException("a feature summary needs at least one input");

        // per row: token ids, then per feature its activation per position
        var rows = new List<(long[] Ids, float[][] Acts)>();
        for (var b = 0; b < inputs.Count; b++)
        {
            var tokens = inputs[b];
            if (tokens.dim() != 2)
                throw new SaeException(
                    $"input {b}: token ids must be [batch, pos], got [{string.Join(", ", tokens.shape)}]");
            using var scope = NewDisposeScope();
            var acts = model.Activations(sae, tokens);
            var picked = acts.index_select(-1, tensor(features.Select(f => (long)f).ToArray(), device: acts.device))
                .permute(0, 2, 1).to(ScalarType.Float32).cpu().contiguous(); // [batch, F, pos]
            var values = picked.data<float>().ToArray();
            var ids = tokens.to(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
            int batch = (int)tokens.shape[0], pos = (int)tokens.shape[1];
            for (var r = 0; r < batch; r++)
                rows.Add((ids[(r * pos)..((r + 1) * pos)],
                    [.. Enumerable.Range(0, features.Count)
                    .Select(j => values[((r * features.Count + j) * pos)..((r * features.Count + j + 1) * pos)])]));
        }
        return [.. features.Select((f, j) => Summarize(model, sae, f, j, rows, options))];
    }

    static FeatureSummary Summarize(HookedTransformer model, SparseAutoencoder sae, int feature, int column,
        List<(long[] Ids, float[][] Acts)> rows, FeatureSummaryOptions options)
    {
        long positions = 0;
        var firing = new List<(double Value, int Row, int Pos)>();
        for (var r = 0; r < rows.Count; r++)
        {
            var acts = rows[r].Acts[column];
            positions += acts.Length;
            for (var p = 0; p < acts.Length; p++)
            {
                if (float.IsNaN(acts[p]))
                    throw new SaeException($"feature {feature}'s activation is NaN at row {r}, position {p}");
                if (acts[p] > 0) firing.Add((acts[p], r, p));
            }
        }
        var top = firing.OrderByDescending(x => x.Value).ThenBy(x => x.Row).ThenBy(x => x.Pos).Take(options.TopContexts)
            .Select(x => Context(model, rows[x.Row].Ids, rows[x.Row].Acts[column], x.Row, x.Pos, options)).ToList();
        var max = firing.Count == 0 ? 0 : firing.Max(x => x.Value);
        var edges = Enumerable.Range(0, options.Bins + 1).Select(i => max * i / options.Bins).ToArray();
        var counts = new long[options.Bins];
        foreach (var (v, _, _) in firing) counts[Math.Min(options.Bins - 1, (int)(v / max * options.Bins))]++;

        IReadOnlyList<(TokenWeight, string)> promoted = [], suppressed = [];
        string? unavailable = null;
        try
        {
            var (p, s) = model.TopLogitTokens(sae, feature, options.LogitTokens);
            promoted = [.. p.Select(w => (w, TokenString(model, w.Token)))];
            suppressed = [.. s.Select(w => (w, TokenString(model, w.Token)))];
        }
        catch (SaeException e) { unavailable = e.Message; }
        return new FeatureSummary(feature, sae.HookName, positions, firing.Count, max, top, edges, counts, promoted,
            suppressed, unavailable);
    }

    static FeatureContext Context(HookedTransformer model, long[] ids, float[] acts, int row, int pos,
        FeatureSummaryOptions options)
    {
        var start = Math.Max(0, pos - options.Before);
        var end = Math.Min(ids.Length, pos + options.After + 1);
        var windowIds = ids[start..end];
        return new FeatureContext(row, pos, acts[pos], start, windowIds,
            [.. windowIds.Select(t => TokenString(model, t))], [.. acts[start..end].Select(v => (double)v)]);
    }

    /// <summary>A token as the model's tokenizer writes it, or its id in brackets when the model has no
    /// tokenizer.</summary>
    static string TokenString(HookedTransformer model, long id) =>
        model.Tokenizer is null ? $"[{id}]" : model.ToStrTokens([(int)id])[0];
}
