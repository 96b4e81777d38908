using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `attribute` (direct logit attribution per head and per layer component) and `logit_lens`, at the last
/// position, from the activation cache's residual-stream methods, with the interventions in force. Texts of
/// different lengths run with their mask and each row is read at its own last real token.
/// </summary>
internal static class AttributionStages
{
    public static ExperimentState Attribute(AttributeStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var whole = state.RequireInput("attribute");
        var chunks =
            BatchChunks.Of(state, s).Select(c => (c.Rows.Batch, Values: AttributeRows(s, state, c.Rows))).ToList();
        var (perHead, perPart, labels, what) = chunks[0].Values;
        if (chunks.Count > 1)
        {
            // Means over rows: the chunks' means weighted by their rows.
            perHead = Enumerable.Range(0, perHead.Length)
                .Select(i => chunks.Sum(c => c.Batch * c.Values.PerHead[i]) / whole.Batch).ToArray();
            perPart = Enumerable.Range(0, perPart.Length)
                .Select(i => chunks.Sum(c => c.Batch * c.Values.PerPart[i]) / whole.Batch).ToArray();
        }
        int heads = state.RequireModel().Config.NHeads;
        return state.WithResult(s, new LayerHeadValue("direct logit attribution", perHead.Chunk(heads).ToArray())
        {
            Title = $"direct logit attribution to {what} at the last position"
                + (whole.Mask is null ? "" : " (each row's last real token)")
                    + (whole.Batch > 1 ? $" (mean of {whole.Batch} rows)" : ""),
            Summary = labels.Select((label, i) => new KeyValuePair<string, double>(label, perPart[i])).ToList(),
        });
    }

    /// <summary>Direct logit attribution on some rows: the mean over them per head [layer·head] and per
    /// component.</summary>
    static (double[] PerHead, double[] PerPart, IReadOnlyList<string> Labels,
        string What) AttributeRows(AttributeStatement s, ExperimentState state, ExperimentInput rows)
    {
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "attribute", masked: true, rows);
        var (model, input) = (pass.Model, pass.Input);
        using var run = model.RunWithCache(pass.Tokens, ReturnType.Logits, attentionMask: pass.AttentionMask);
        Tensor target;
        Tensor? incorrect = null;
        string what;
        if (s.Target is { } given)
        {
            target = tensor(IdOf(model, given.Token));
            what = Printer.Print(given.Token);
            if (given.Versus is { } versus)
            {
                incorrect = tensor(IdOf(model, versus));
                what += " − " + Printer.Print(versus);
            }
        }
        else
        {
            target = RealPositions.AtLast(run.Logits, input).argmax(-1);     // each row's predicted token
            what = "each row's predicted token";
        }
        // [layer·head, batch]: each head's attribution at each row's last (real) position
        var perHead = RealPositions.ByLastReal(input, 1, last =>
        {
            using var heads = run.Cache.StackHeadResults(-1, false, last);  // [layer·head, batch, d_model]
            return run.Cache.LogitAttrs(heads.Stack, target, incorrect, last);
        }).mean([1L]);
        IReadOnlyList<string> labels = [];
        var perPart = TensorData.Flat(RealPositions.ByLastReal(input, 1, last =>
        {
            using var parts = run.Cache.DecomposeResid(-1, false, "all", false, last);
            labels = parts.Labels;
            return run.Cache.LogitAttrs(parts.Stack, target, incorrect, last);
        }).mean([1L]));
        return (TensorData.Flat(perHead), perPart, labels, what);
    }

    internal static long IdOf(HookedTransformer model, TokenRef token) => token switch
    {
        TokenId id => id.Id,
        TokenText text => model.ToSingleToken(text.Text),
        _ => throw new ArgumentException($"unknown token reference {token.GetType().Name}"),
    };

    public static ExperimentState LogitLens(LogitLensStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var whole = state.RequireInput("logit_lens");
        var chunks =
            BatchChunks.Of(state, s).Select(c => (c.Rows.Batch, Values: LogitLensRows(state, c.Rows))).ToList();
        var (labels, ids, p, finalProb) = chunks[0].Values;                         // row 0 is in the first chunk
        if (chunks.Count > 1)
            finalProb = Enumerable.Range(0, finalProb.Length)
                .Select(i => chunks.Sum(c => c.Batch * c.Values.FinalProb[i]) / whole.Batch).ToArray();
        var model = state.RequireModel().Model;
        var rows =
            labels.Select((label, i) => new object[] { label, ForwardStages.Token(model, ids[i]), p[i], finalProb[i] })
                .ToArray();
        return state.WithResult(s,
            new TableValue(["residual stream", "top token (row 0)", "probability", "p(final prediction)"], rows)
            {
                Title = "logit lens at the last position" + (whole.Mask is null ? "" : " (each row's last real token)")
                + ": each layer's residual stream through ln_final and the unembedding"
                    + (whole.Batch > 1 ? $" (p(final prediction) is the mean of {whole.Batch} rows)" : ""),
            });
    }

    /// <summary>The logit lens on some rows: per layer, row 0's top token and its probability, and the mean probability
    /// of each row's final prediction.</summary>
    static (IReadOnlyList<string> Labels, long[] Ids, double[] P,
        double[] FinalProb) LogitLensRows(ExperimentState state, ExperimentInput rows)
    {
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "logit_lens", masked: true, rows);
        var (model, input) = (pass.Model, pass.Input);
        using var run = model.RunWithCache(pass.Tokens, ReturnType.Logits, attentionMask: pass.AttentionMask);
        IReadOnlyList<string> labels = [];
        // [layer + 1, batch, d_vocab] at each row's last real token
        var stack = RealPositions.ByLastReal(input, 1, last =>
        {
            using var lens = run.Cache.LogitLens(true, last);
            labels = lens.Labels;
            return lens.Stack.clone();
        });
        var probs = stack.to(ScalarType.Float32).softmax(-1);
        // [batch]: the model's own prediction
        var final = probs.select(0, -1).argmax(-1);
        var (topProb, topId) = probs.select(1, 0).max(-1);                     // row 0, per layer
        var finalProb = TensorData.Flat(probs.gather(-1, final.view(1, -1, 1).expand(probs.shape[0], -1, 1)).squeeze(-1)
            .mean([1L]));
        return (labels, TensorData.Longs(topId), TensorData.Flat(topProb), finalProb);
    }
}
