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
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "attribute", masked: true);
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
        }).mean([1L]).reshape(model.Config.NLayers, model.Config.NHeads);
        IReadOnlyList<string> labels = [];
        var perPart = TensorData.Flat(RealPositions.ByLastReal(input, 1, last =>
        {
            using var parts = run.Cache.DecomposeResid(-1, false, "all", false, last);
            labels = parts.Labels;
            return run.Cache.LogitAttrs(parts.Stack, target, incorrect, last);
        }).mean([1L]));
        return state.WithResult(s, new LayerHeadValue("direct logit attribution", TensorData.Grid(perHead))
        {
            Title = $"direct logit attribution to {what} at the last position" + (input.Mask is null ? "" : " (each row's last real token)")
                    + (input.Batch > 1 ? $" (mean of {input.Batch} rows)" : ""),
            Summary = labels.Select((label, i) => new KeyValuePair<string, double>(label, perPart[i])).ToList(),
        });
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
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "logit_lens", masked: true);
        var (model, input) = (pass.Model, pass.Input);
        using var run = model.RunWithCache(pass.Tokens, ReturnType.Logits, attentionMask: pass.AttentionMask);
        IReadOnlyList<string> labels = [];
        var stack = RealPositions.ByLastReal(input, 1, last =>                // [layer + 1, batch, d_vocab] at each row's last real token
        {
            using var lens = run.Cache.LogitLens(true, last);
            labels = lens.Labels;
            return lens.Stack.clone();
        });
        var probs = stack.to(ScalarType.Float32).softmax(-1);
        var final = probs.select(0, -1).argmax(-1);                                      // [batch]: the model's own prediction
        var (topProb, topId) = probs.select(1, 0).max(-1);                     // row 0, per layer
        var finalProb = TensorData.Flat(probs.gather(-1, final.view(1, -1, 1).expand(probs.shape[0], -1, 1)).squeeze(-1).mean([1L]));
        var ids = TensorData.Longs(topId);
        var p = TensorData.Flat(topProb);
        var rows = labels.Select((label, i) => new object[] { label, ForwardStages.Token(model, ids[i]), p[i], finalProb[i] }).ToArray();
        return state.WithResult(s, new TableValue(["residual stream", "top token (row 0)", "probability", "p(final prediction)"], rows)
        {
            Title = "logit lens at the last position" + (input.Mask is null ? "" : " (each row's last real token)") + ": each layer's residual stream through ln_final and the unembedding"
                    + (input.Batch > 1 ? $" (p(final prediction) is the mean of {input.Batch} rows)" : ""),
        });
    }
}
