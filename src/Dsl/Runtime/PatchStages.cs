using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `patch TARGET from SOURCE [metric M]`: activation patching with the analysis library. The source is the
/// clean run whose activations are patched in; the current input is the corrupted run patched into. Each
/// cell is the metric of one patched run; the summary gives the metric of the clean and the corrupted runs.
/// Metrics: `logit_diff A B` (mean over rows, last position), `prob A` (mean probability at the last
/// position), `loss` (mean next-token loss on the current input's tokens). Texts of different lengths:
/// both inputs must be padded alike (row r of each has the same number of real tokens); every run gets the
/// mask, only real positions are patched, and the metrics read each row's last real token and real pairs.
/// </summary>
internal static class PatchStages
{
    public static ExperimentState Patch(PatchStatement s, ExperimentState state) =>
        InChunks(s, "patch", s.Source, s.Metric, state,
            (withModel, clean, rows) => PatchRows(s, withModel, clean, rows));

    /// <summary>
    /// The result of `patch` or `attribute patch` (<paramref name="s"/>, <paramref name="command"/>): its
    /// <paramref name="table"/> of the whole current input (rows null), or, when the checks planned chunks of rows,
    /// the tables of the chunks combined. The clean run <paramref name="source"/> is resolved once, and each table
    /// gets the rows of it that its rows are patched from (<see cref="CleanRows"/>). Each cell is a mean over rows
    /// (logit_diff, prob) or over real pairs of tokens (loss), or a sum over rows of the gradient of such a mean, so
    /// the chunks' cells are averaged with those weights.
    /// </summary>
    internal static ExperimentState InChunks(Statement s, string command, InputSource source, Metric metric,
        ExperimentState state, Func<ExperimentState, ExperimentInput, ExperimentInput?, ResultValue> table)
    {
        state = state.WithModel();
        var chunks = BatchChunks.Of(state, s).ToList();
        var input = state.RequireInput(command);
        var clean = Inputs.Resolve(source, state.RequireModel().Model, state);
        ResultValue Table(int start, ExperimentInput? rows) =>
            table(state, CleanRows(clean, source, command, input, start, rows), rows);
        if (chunks.Count == 1) return state.WithResult(s, Table(0, null));
        var parts = chunks.Select(c => (RowWeight(metric, c.Rows), Table(c.Start, c.Rows))).ToList();
        return state.WithResult(s, Combine(parts));
    }

    /// <summary>What a chunk of rows weighs in a metric: its rows for means over rows, its real pairs of tokens for the
    /// loss.</summary>
    static double RowWeight(Metric metric, ExperimentInput rows) =>
        metric is LogitDiffMetric or ProbMetric
            ? rows.Batch
            : Enumerable.Range(0, rows.Batch).Sum(r => (double)rows.LastReal(r));

    /// <summary>The chunks' tables (cells and summary) averaged with their weights.</summary>
    static ResultValue Combine(IReadOnlyList<(double Weight, ResultValue Value)> parts)
    {
        double total = parts.Sum(p => p.Weight);
        double Mix(Func<ResultValue, double> of) => parts.Sum(p => p.Weight * of(p.Value)) / total;
        ResultValue combined = parts[0].Value switch
        {
            LayerHeadValue v => v with
            {
                Values =
                    v.Values.Select((row, l) =>
                        row.Select((_, h) => Mix(x => ((LayerHeadValue)x).Values[l][h])).ToArray()).ToArray()
            },
            TensorValue v =>
                v with { Values = v.Values.Select((_, i) => Mix(x => ((TensorValue)x).Values[i])).ToArray() },
            var other => throw new InvalidOperationException($"patch gave a {other.Kind}"),
        };
        return combined with
        {
            Summary = parts[0]
                .Value.Summary.Select(kv => new KeyValuePair<string, double>(kv.Key,
                Mix(x => x.Summary.First(k => k.Key == kv.Key).Value))).ToList()
        };
    }

    /// <summary>
    /// The patching table on some rows of the current input (null: all of them), from <paramref name="clean"/>, the
    /// same rows of the source.
    /// </summary>
    static ResultValue PatchRows(PatchStatement s, ExperimentState state, ExperimentInput clean, ExperimentInput? rows)
    {
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "patch", masked: true, rows);
        var (model, corrupted, corruptedTokens, mask) = (pass.Model, pass.Input, pass.Tokens, pass.AttentionMask);
        var metric = Metric(s.Metric, model, corrupted, corruptedTokens, mask);
        var options = new PatchingOptions { MetricReads = MetricReads(s.Metric, model, corrupted) };
        var activation = s.Target switch
        {
            PatchTarget.ResidPre => "resid_pre",
            PatchTarget.AttnOut => "attn_out",
            PatchTarget.MlpOut => "mlp_out",
            PatchTarget.Heads or PatchTarget.HeadsByPos => "z",
            _ => null,
        };
        string[] names = activation is null ? ["resid_pre", "attn_out", "mlp_out"] : [activation];
        using var cleanRun = model.RunWithCache(clean.ToTensor(model.Device), ReturnType.Logits,
            HookedTransformer.NamesFilter([.. names.Select(n => "blocks.*.hook_" + n), "blocks.*.attn.hook_z"]),
            attentionMask: mask);
        double cleanMetric = metric(cleanRun.Logits);
        double corruptedMetric = metric(model.Forward(corruptedTokens, ReturnType.Logits, attentionMask: mask).Logits!);
        using var result = s.Target switch
        {
            PatchTarget.ResidPre => Patching.ResidPre(model, corruptedTokens, cleanRun.Cache, metric, options, mask),
            PatchTarget.AttnOut => Patching.AttnOut(model, corruptedTokens, cleanRun.Cache, metric, options, mask),
            PatchTarget.MlpOut => Patching.MlpOut(model, corruptedTokens, cleanRun.Cache, metric, options, mask),
            PatchTarget.Heads =>
                Patching.AttnHeadOutAllPos(model, corruptedTokens, cleanRun.Cache, metric, options, mask),
            PatchTarget.HeadsByPos =>
                Patching.AttnHeadOutByPos(model, corruptedTokens, cleanRun.Cache, metric, options, mask),
            _ => Patching.GetActPatchBlockEvery(model, corruptedTokens, cleanRun.Cache, metric, options, mask),
        };
        var measure = Printer.Print(s.Metric);
        var title = $"patch {Keywords.PatchTargets.Text(s.Target)} from {Printer.Print(s.Source)} " +
            $"into {Printer.Print(corrupted.Source)}: {measure} of each patched run";
        List<KeyValuePair<string, double>> summary = [new("clean", cleanMetric), new("corrupted", corruptedMetric)];
        ResultValue value = s.Target == PatchTarget.Heads
            ? new LayerHeadValue(measure, TensorData.Grid(result.Values))
            : new TensorValue(measure, TensorData.Flat(result.Values),
                result.Values.shape.Select(d => (int)d).ToArray(), [.. result.AxisNames],
                result.AxisNames.Select((axis, a) => axis == "pos"
                    ? corrupted.Tokens[0].Select((t, i) => $"{i} {Lens.Visualization.TokenText.Display(t)}").ToArray()
                    : result.AxisLabels[a].ToArray()).ToArray());
        return value with { Title = title, Summary = summary };
    }

    /// <summary>
    /// The clean run of `patch`/`attribute patch` (<paramref name="command"/>) for the rows being patched: when the
    /// current <paramref name="input"/> runs in chunks (<paramref name="rows"/> from <paramref name="start"/>) and
    /// SOURCE (<paramref name="clean"/>) has as many rows, the same rows of SOURCE; otherwise SOURCE whole. Refused,
    /// naming SOURCE, when its rows' real tokens do not line up with the rows being patched.
    /// </summary>
    static ExperimentInput CleanRows(ExperimentInput clean, InputSource source, string command, ExperimentInput input,
        int start, ExperimentInput? rows)
    {
        if (rows is not null && clean.Batch == input.Batch) clean = clean.Slice(start, rows.Batch);
        if ((rows ?? input).MisalignedWith(clean) is string why)
            throw new ArgumentException($"`{command} ... from {Printer.Print(source)}`: {why}");
        return clean;
    }

    /// <summary>
    /// The logits a metric reads (a batched sweep computes only those): logit_diff two columns and prob one row at
    /// each row's last real token (the last position when nothing is padded); the loss every logit.
    /// </summary>
    internal static LogitsRead? MetricReads(Metric metric, HookedTransformer model, ExperimentInput input)
    {
        long[] last = input.Mask is null
            ? [-1]
            : Enumerable.Range(0, input.Batch).Select(r => (long)input.LastReal(r)).Distinct().ToArray();
        return metric switch
        {
            LogitDiffMetric m => new LogitsRead(last,
                [AttributionStages.IdOf(model, m.Correct), AttributionStages.IdOf(model, m.Incorrect)]),
            ProbMetric => new LogitsRead(last, null),
            _ => null,
        };
    }

    static Func<Tensor, double> Metric(Metric metric, HookedTransformer model, ExperimentInput input, Tensor tokens,
        Tensor? mask)
    {
        switch (metric)
        {
            case LogitDiffMetric m:
                long correct = AttributionStages.IdOf(model, m.Correct),
                    incorrect = AttributionStages.IdOf(model, m.Incorrect);
                return logits =>
                {
                    using var scope = NewDisposeScope();
                    // [batch, d_vocab] at each row's last real token
                    var last = RealPositions.AtLast(logits, input);
                    return (last.select(-1, correct) - last.select(-1, incorrect)).to(ScalarType.Float64).mean()
                        .item<double>();
                };
            case ProbMetric m:
                long id = AttributionStages.IdOf(model, m.Token);
                return logits =>
                {
                    using var scope = NewDisposeScope();
                    return RealPositions.AtLast(logits, input).to(ScalarType.Float64).softmax(-1).select(-1, id).mean()
                        .item<double>();
                };
            default:
                return logits =>
                {
                    using var scope = NewDisposeScope();
                    return LossFunctions.LmCrossEntropy(logits, tokens, attentionMask: mask).to(ScalarType.Float64)
                        .item<double>();
                };
        }
    }
}
