using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `run`, `loss`, `logits`, `predict`, `generate`: forward passes on the current input, with the interventions in
/// force.
/// `run`, `loss`, `logits` and `predict` run in the chunks of rows the checks planned (<see cref="BatchChunks"/>) when
/// the whole input does not fit the memory budget; their results are those of one batch.
/// </summary>
internal static class ForwardStages
{
    public static ExperimentState Run(RunStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var rows = new List<object[]>();
        long[] shape = [];
        foreach (var (start, chunk) in BatchChunks.Of(state, s))
        {
            using var scope = NewDisposeScope();
            using var pass = new StagePass(state, "run", masked: true, chunk);
            var logits = pass.Model.Forward(pass.Tokens, ReturnType.Logits, attentionMask: pass.AttentionMask).Logits!;
            shape = logits.shape;
            var last = LastReal(logits, pass.Input).softmax(-1);
            var (prob, next) = last.max(-1);
            var probs = TensorData.Flat(prob);
            var ids = TensorData.Longs(next);
            rows.AddRange(Enumerable.Range(0, pass.Input.Batch).Select(r => new object[]
            {
                start + r, pass.Input.Tokens[r][pass.Input.LastReal(r)], Token(pass.Model, ids[r]), ids[r], probs[r],
            }));
        }
        var input = state.RequireInput("run");
        shape[0] = input.Batch;
        return state.WithResult(s,
            new TableValue(["row", "last token", "predicted next", "id", "probability"], [.. rows])
            {
                Title =
                    $"forward pass: tokens [{input.Batch}, {input.Positions}] → logits [{string.Join(", ", shape)}]",
            });
    }

    public static ExperimentState Loss(LossStatement s, ExperimentState state)
    {
        state = state.WithModel();
        using var scope = NewDisposeScope();
        var input = state.RequireInput("loss");
        var chunks = BatchChunks.Of(state, s).ToList();
        var grids = new List<double[][]>();
        double sum = 0, counted = 0, mean = 0;
        foreach (var (_, chunk) in chunks)
        {
            using var pass = new StagePass(state, "loss", masked: true, chunk);
            // [batch, pos - 1]: position i predicts token i + 1; with padding, pairs touching a pad are 0 and not
            // counted.
            var perToken = pass.Model.Loss(pass.Tokens, perToken: true, attentionMask: pass.AttentionMask);
            grids.Add(TensorData.Grid(perToken));
            // the library's mean loss, bit for bit
            if (chunks.Count == 1)
                mean = Numbers.FromFloat(pass.Model.Loss(pass.Tokens, attentionMask: pass.AttentionMask).item<float>());
            else
            {
                // Chunks: the sum of the counted pairs' losses over the number of counted pairs, as one batch's mean.
                sum += perToken.to(ScalarType.Float64).sum().item<double>();
                counted += pass.AttentionMask is null ? perToken.numel() : Pairs(pass.AttentionMask);
            }
        }
        if (chunks.Count > 1) mean = sum / counted;
        var summary = new List<KeyValuePair<string, double>>();
        if (input.Repeat is RepeatLayout layout)
        {
            var losses = grids.SelectMany(g => g).ToArray();
            for (int r = 0; r < layout.Repeats; r++)
            {
                // Tokens of copy r that have a predecessor; the loss predicting token t sits at t - 1.
                var positions =
                    Enumerable.Range(layout.Offset + r * layout.Length, layout.Length).Where(t => t >= 1).ToList();
                if (positions.Count == 0) continue;
                summary.Add(new($"repeat {r + 1}", losses.Average(row => positions.Average(t => row[t - 1]))));
            }
        }
        return state.WithResult(s, new ScalarValue("loss", mean)
        {
            Title = "mean next-token loss" + (summary.Count > 0 ? " (and per repeated copy)" : "")
                + $" on {Printer.Print(input.Source)}", Summary = summary,
        });
    }

    public static ExperimentState Logits(LogitsStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var rows = new List<object[]>();
        var all = new List<float[]>();
        int k = 0;
        foreach (var (start, chunk) in BatchChunks.Of(state, s))
        {
            using var scope = NewDisposeScope();
            using var pass = new StagePass(state, "logits", masked: true, chunk);
            // [batch, d_vocab]
            var last =
                LastReal(pass.Model.Forward(pass.Tokens, ReturnType.Logits, attentionMask: pass.AttentionMask).Logits!,
                    pass.Input);
            k = (int)Math.Min(s.Top ?? last.shape[1], last.shape[1]);
            var (values, ids) = last.topk(k, -1);
            var probs = last.softmax(-1).gather(-1, ids);
            var logit = TensorData.Flat(values);
            var prob = TensorData.Flat(probs);
            var id = TensorData.Longs(ids);
            for (int r = 0; r < pass.Input.Batch; r++)
                for (int i = 0; i < k; i++)
                    rows.Add([start + r, i + 1, Token(pass.Model, id[r * k + i]), id[r * k + i], logit[r * k + i],
                        prob[r * k + i]]);
            all.AddRange(TensorData.Grid(last).Select(r => r.Select(v => (float)v).ToArray()));
        }
        var table = new TableValue(["row", "rank", "token", "id", "logit", "probability"], [.. rows])
        {
            MaxTextRows = s.Top is null ? 20 : null
        };
        return state.WithResult(s, new LogitsValue(table, [.. all])
        {
            Title = (s.Top is null ? "every logit" : $"top {k} logits") + " at the last position"
                + (state.RequireInput("logits").Mask is null ? "" : " (each row's last real token)"),
        });
    }

    public static ExperimentState Predict(PredictStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var p = new List<double>();
        var id = new List<long>();
        foreach (var (_, chunk) in BatchChunks.Of(state, s))
        {
            using var scope = NewDisposeScope();
            using var chunkPass = new StagePass(state, "predict", masked: true, chunk);
            var probs =
                chunkPass.Model.Forward(chunkPass.Tokens, ReturnType.Logits, attentionMask: chunkPass.AttentionMask)
                    .Logits!.softmax(-1);
            var (best, ids) = probs.max(-1);                                    // [batch, pos]
            p.AddRange(TensorData.Flat(best));
            id.AddRange(TensorData.Longs(ids));
        }
        var pass = (Input: state.RequireInput("predict"), Model: state.RequireModel().Model);
        int positions = pass.Input.Positions;
        var rows = new List<object[]>();
        int correct = 0, counted = 0;
        for (int r = 0; r < pass.Input.Batch; r++)
            for (int i = 0; i < positions; i++)
            {
                if (!pass.Input.IsReal(r, i)) continue;                        // pads are neither predicted nor scored
                long predicted = id[r * positions + i];
                bool hasNext = i + 1 < positions && pass.Input.IsReal(r, i + 1);
                string next = hasNext ? pass.Input.Tokens[r][i + 1] : "";
                bool hit = hasNext && pass.Input.Ids[r][i + 1] == predicted;
                if (hasNext) { counted++; if (hit) correct++; }
                rows.Add([r, i, pass.Input.Tokens[r][i], Token(pass.Model, predicted), p[r * positions + i], next,
                    hit ? "yes" : ""]);
            }
        var summary = new List<KeyValuePair<string, double>>
        {
            new("accuracy", counted == 0 ? double.NaN : (double)correct / counted)
        };
        if (pass.Input.Repeat is RepeatLayout layout)
            for (int c = 0; c < layout.Repeats; c++)
            {
                var targets =
                    Enumerable.Range(layout.Offset + c * layout.Length, layout.Length).Where(t => t >= 1).ToList();
                int hits = 0;
                for (int r = 0; r < pass.Input.Batch; r++)
                    hits += targets.Count(t => id[r * positions + t - 1] == pass.Input.Ids[r][t]);
                summary.Add(new($"accuracy, repeat {c + 1}",
                    targets.Count == 0 ? double.NaN : (double)hits / (targets.Count * pass.Input.Batch)));
            }
        return state.WithResult(s,
            new TableValue(["row", "pos", "token", "predicted next", "probability", "actual next", "correct"],
            [.. rows])
            {
                Title = "the predicted next token at each position",
                Summary = summary,
                MaxTextRows = 24,
            });
    }

    public static ExperimentState Generate(GenerateStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var options = GenerationOptionsOf(s, state.Seed);
        var model = state.RequireModel().Model;
        var texts = new List<string>();
        var added = new List<long[]>();
        // Greedy generation above the memory budget runs in chunks of rows (the checks plan them): each row generates
        // as if alone.
        foreach (var (_, chunk) in BatchChunks.Of(state, s))
        {
            using var scope = NewDisposeScope();
            using var pass = new StagePass(state, "generate", masked: true, chunk);
            // Prompts of different lengths are left-padded, so that every row continues from its own last token
            // and, with the mask, generates as if it were alone.
            var (prompt, mask) = LeftPadded(pass.Input, pass.Model.Device);
            using var _ = prompt; using var __ = mask;
            var generated = pass.Model.Generate(prompt, s.MaxNewTokens, options, mask);
            var all = TensorData.Longs(generated);
            int width = (int)generated.shape[1], promptWidth = pass.Input.Positions;
            var rows = Enumerable.Range(0, pass.Input.Batch).Select(r =>
            {
                int pads = pass.Input.Mask is null ? 0 : pass.Input.Mask[r].Count(m => m == 0);
                return all.AsSpan(r * width + pads, width - pads).ToArray();
            }).ToArray();
            added.AddRange(rows.Select(r => r[(r.Length - (width - promptWidth))..]));
            texts.AddRange(rows.Select(r =>
                pass.Model.Tokenizer is null ? string.Join(" ", r) : pass.Model.ToText(r.Select(id => (int)id))));
        }
        var how = options.IsGreedy ? "greedy" : $"sampled (temperature {Printer.Number(options.Temperature)}"
            + (s.TopK is int k ? $", top_k {k}" : "") + (s.TopP is double tp ? $", top_p {Printer.Number(tp)}" : "")
            + $", seed {state.Seed})";
        return state.WithResult(s,
            new TextValue([.. texts], [.. added], added.Select(r => Inputs.Strings(r, model)).ToArray())
            {
                Title = $"{s.MaxNewTokens} new tokens, {how}",
            });
    }

    /// <summary>What `generate` asks of <see cref="HookedTransformer.Generate"/>.</summary>
    internal static GenerationOptions GenerationOptionsOf(GenerateStatement s, long seed) =>
        new() { Greedy = s.Greedy, Temperature = s.Temperature ?? 1.0, TopK = s.TopK, TopP = s.TopP, Seed = seed };

    internal static string Token(HookedTransformer model, long id) => Inputs.Strings([id], model)[0];

    /// <summary>The number of pairs (t, t + 1) of real tokens under a mask [batch, pos]: what a masked mean loss
    /// divides by.</summary>
    static double Pairs(Tensor mask)
    {
        using var scope = NewDisposeScope();
        var real = mask.to(ScalarType.Bool);
        long pos = real.shape[1];
        return real.narrow(1, 0, pos - 1).logical_and(real.narrow(1, 1, pos - 1)).sum().item<long>();
    }

    /// <summary>logits [batch, pos, vocab] at each row's last real token → [batch, vocab].</summary>
    static Tensor LastReal(Tensor logits, ExperimentInput input)
    {
        if (input.Mask is null) return logits.select(1, -1);
        var index = tensor(Enumerable.Range(0, input.Batch).Select(r => (long)input.LastReal(r)).ToArray(),
            dtype: ScalarType.Int64, device: logits.device);
        return logits.gather(1, index.view(-1, 1, 1).expand(-1, 1, logits.shape[2])).squeeze(1);
    }

    /// <summary>The input's rows with their pads moved to the left, and the matching mask (null when
    /// unpadded).</summary>
    static (Tensor Tokens, Tensor? Mask) LeftPadded(ExperimentInput input, Device device)
    {
        if (input.Mask is null) return (input.ToTensor(device), null);
        int width = input.Positions;
        var ids = new long[input.Batch * width];
        var mask = new long[input.Batch * width];
        for (int r = 0; r < input.Batch; r++)
        {
            var real = input.Ids[r].Where((_, i) => input.Mask[r][i] == 1).ToArray();
            var pad = input.Ids[r].Where((_, i) => input.Mask[r][i] == 0).FirstOrDefault();
            int pads = width - real.Length;
            for (int i = 0; i < width; i++)
            {
                ids[r * width + i] = i < pads ? pad : real[i - pads];
                mask[r * width + i] = i < pads ? 0 : 1;
            }
        }
        return (tensor(ids, [input.Batch, width], dtype: ScalarType.Int64, device: device),
            tensor(mask, [input.Batch, width], dtype: ScalarType.Int64, device: device));
    }
}
