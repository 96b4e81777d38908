using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>`run`, `loss`, `logits`, `predict`, `generate`: forward passes on the current input, with the interventions in force.</summary>
internal static class ForwardStages
{
    public static ExperimentState Run(RunStatement s, ExperimentState state)
    {
        state = state.WithModel();
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "run");
        var logits = pass.Model.Forward(pass.Tokens);
        var last = logits.select(1, -1).softmax(-1);
        var (prob, next) = last.max(-1);
        var probs = TensorData.Flat(prob);
        var ids = TensorData.Longs(next);
        var rows = Enumerable.Range(0, pass.Input.Batch).Select(r => new object[]
        {
            r, pass.Input.Tokens[r][^1], Token(pass.Model, ids[r]), ids[r], probs[r],
        }).ToArray();
        return state.WithResult(s, new TableValue(["row", "last token", "predicted next", "id", "probability"], rows)
        {
            Title = $"forward pass: tokens [{pass.Input.Batch}, {pass.Input.Positions}] → logits [{string.Join(", ", logits.shape)}]",
        });
    }

    public static ExperimentState Loss(LossStatement s, ExperimentState state)
    {
        state = state.WithModel();
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "loss");
        var perToken = pass.Model.Loss(pass.Tokens, perToken: true);          // [batch, pos - 1]: position i predicts token i + 1
        var mean = Numbers.FromFloat(perToken.mean().item<float>());          // the library's mean loss, bit for bit
        var summary = new List<KeyValuePair<string, double>>();
        if (pass.Input.Repeat is RepeatLayout layout)
        {
            var losses = TensorData.Grid(perToken);
            for (int r = 0; r < layout.Repeats; r++)
            {
                // Tokens of copy r that have a predecessor; the loss predicting token t sits at t - 1.
                var positions = Enumerable.Range(layout.Offset + r * layout.Length, layout.Length).Where(t => t >= 1).ToList();
                if (positions.Count == 0) continue;
                summary.Add(new($"repeat {r + 1}", losses.Average(row => positions.Average(t => row[t - 1]))));
            }
        }
        return state.WithResult(s, new ScalarValue("loss", mean)
        {
            Title = "mean next-token loss" + (summary.Count > 0 ? " (and per repeated copy)" : "") + $" on {Printer.Print(pass.Input.Source)}",
            Summary = summary,
        });
    }

    public static ExperimentState Logits(LogitsStatement s, ExperimentState state)
    {
        state = state.WithModel();
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "logits");
        var last = pass.Model.Forward(pass.Tokens).select(1, -1);            // [batch, d_vocab]
        int k = (int)Math.Min(s.Top ?? last.shape[1], last.shape[1]);
        var (values, ids) = last.topk(k, -1);
        var probs = last.softmax(-1).gather(-1, ids);
        var logit = TensorData.Flat(values);
        var prob = TensorData.Flat(probs);
        var id = TensorData.Longs(ids);
        var rows = new List<object[]>();
        for (int r = 0; r < pass.Input.Batch; r++)
            for (int i = 0; i < k; i++)
                rows.Add([r, i + 1, Token(pass.Model, id[r * k + i]), id[r * k + i], logit[r * k + i], prob[r * k + i]]);
        return state.WithResult(s, new TableValue(["row", "rank", "token", "id", "logit", "probability"], [.. rows])
        {
            Title = (s.Top is null ? "every logit" : $"top {k} logits") + " at the last position",
            MaxTextRows = s.Top is null ? 20 : null,
        });
    }

    public static ExperimentState Predict(PredictStatement s, ExperimentState state)
    {
        state = state.WithModel();
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "predict");
        var probs = pass.Model.Forward(pass.Tokens).softmax(-1);
        var (best, ids) = probs.max(-1);                                        // [batch, pos]
        var p = TensorData.Flat(best);
        var id = TensorData.Longs(ids);
        int positions = pass.Input.Positions;
        var rows = new List<object[]>();
        int correct = 0, counted = 0;
        for (int r = 0; r < pass.Input.Batch; r++)
            for (int i = 0; i < positions; i++)
            {
                long predicted = id[r * positions + i];
                string next = i + 1 < positions ? pass.Input.Tokens[r][i + 1] : "";
                bool hit = i + 1 < positions && pass.Input.Ids[r][i + 1] == predicted;
                if (i + 1 < positions) { counted++; if (hit) correct++; }
                rows.Add([r, i, pass.Input.Tokens[r][i], Token(pass.Model, predicted), p[r * positions + i], next, hit ? "yes" : ""]);
            }
        var summary = new List<KeyValuePair<string, double>> { new("accuracy", counted == 0 ? double.NaN : (double)correct / counted) };
        if (pass.Input.Repeat is RepeatLayout layout)
            for (int c = 0; c < layout.Repeats; c++)
            {
                var targets = Enumerable.Range(layout.Offset + c * layout.Length, layout.Length).Where(t => t >= 1).ToList();
                int hits = 0;
                for (int r = 0; r < pass.Input.Batch; r++)
                    hits += targets.Count(t => id[r * positions + t - 1] == pass.Input.Ids[r][t]);
                summary.Add(new($"accuracy, repeat {c + 1}", targets.Count == 0 ? double.NaN : (double)hits / (targets.Count * pass.Input.Batch)));
            }
        return state.WithResult(s, new TableValue(["row", "pos", "token", "predicted next", "probability", "actual next", "correct"], [.. rows])
        {
            Title = "the predicted next token at each position",
            Summary = summary,
            MaxTextRows = 24,
        });
    }

    public static ExperimentState Generate(GenerateStatement s, ExperimentState state)
    {
        state = state.WithModel();
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "generate");
        var options = new GenerationOptions { Greedy = s.Greedy, Temperature = s.Temperature ?? 1.0, TopK = s.TopK, TopP = s.TopP, Seed = state.Seed };
        var generated = pass.Model.Generate(pass.Tokens, s.MaxNewTokens, options);
        var all = TensorData.Longs(generated);
        int width = (int)generated.shape[1], prompt = pass.Input.Positions;
        var rows = Enumerable.Range(0, pass.Input.Batch).Select(r => all.AsSpan(r * width, width).ToArray()).ToArray();
        var added = rows.Select(r => r[prompt..]).ToArray();
        var texts = rows.Select(r => pass.Model.Tokenizer is null ? string.Join(" ", r) : pass.Model.ToText(r.Select(id => (int)id))).ToArray();
        var how = s.Greedy || s.Temperature == 0 ? "greedy" : $"sampled (temperature {Printer.Number(options.Temperature)}"
            + (s.TopK is int k ? $", top_k {k}" : "") + (s.TopP is double tp ? $", top_p {Printer.Number(tp)}" : "") + $", seed {state.Seed})";
        return state.WithResult(s, new TextValue(texts, added, added.Select(r => Inputs.Strings(r, pass.Model)).ToArray())
        {
            Title = $"{s.MaxNewTokens} new tokens, {how}",
        });
    }

    internal static string Token(HookedTransformer model, long id) => Inputs.Strings([id], model)[0];
}
