using System.Text;
using Lens.IO;
using Lens.Visualization;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `show` (figures: attention patterns, score heatmaps, tokens coloured by their loss; written to a
/// self-contained HTML file with `> PATH`, and always part of the run's report), `cache` (activations to
/// or compared with a safetensors file) and `print` (a name's value or an activation's statistics).
/// </summary>
internal static class OutputStages
{
    public static ExperimentState Show(ShowStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var (title, fragments, text) = s.View switch
        {
            PatternView v => Patterns(s, v, state),
            ScoresView v => Scores(v, state),
            _ => Tokens(state),
        };
        var figure = new HtmlContent(string.Concat(fragments.Select(f => f.Html)));
        if (s.OutputPath is string path) HtmlPage.Wrap(title, fragments).Save(state.Environment.WritePath(path));
        return state.WithResult(s, new FigureValue(figure, s.OutputPath, text) { Title = title });
    }

    static (string, HtmlContent[], string) Patterns(ShowStatement s, PatternView v, ExperimentState state)
    {
        using var scope = NewDisposeScope();
        var input = state.RequireInput("show pattern");
        // Above the memory budget the checks plan row 0 alone: the only row drawn.
        bool firstRowOnly = state.Environment.ChunkPlans.TryGetValue(s, out var plan) && plan.FirstRowOnly;
        using var pass = new StagePass(state, "show pattern", masked: true, firstRowOnly ? input.Slice(0, 1) : null);
        var model = pass.Model;
        var heads = HeadStages.Resolve(v.Heads, state);
        if (heads.Count == 0)
            throw new ArgumentException($"the selection {Printer.Print(v.Heads)} picks no heads: nothing to show");
        using var run = model.RunWithCache(pass.Tokens, ReturnType.Logits,
            HookedTransformer.NamesFilter("blocks.*.attn.hook_pattern"), attentionMask: pass.AttentionMask);
        int length = input.LastReal(0) + 1;                                     // row 0's own tokens, without its pads
        // [head, query, key], row 0
        var patterns =
            stack(heads.Select(h => run.Cache["pattern", h.Layer][0, h.Head].narrow(0, 0, length).narrow(1, 0, length))
                .ToArray());
        var title = $"attention patterns of {Printer.Print(v.Heads)} on {Printer.Print(input.Source)}"
            + (input.Batch > 1 ? " (row 0)" : "");
        var fragment = AttentionPatterns.RenderFragment(input.Tokens[0][..length], patterns,
            heads.Select(h => h.Label).ToArray(), title);
        var lastRow = patterns.select(1, -1);                                   // what the last query attends to
        var (weight, key) = lastRow.max(-1);
        var w = TensorData.Flat(weight);
        var k = TensorData.Longs(key);
        var text = new StringBuilder($"{heads.Count} head(s), {length} tokens; the last token attends most to:\n");
        for (int i = 0; i < heads.Count; i++)
            text.Append(CultureInfo.InvariantCulture,
                $"  {heads[i].Label}: position {k[i]} {Lens.Visualization.TokenText.Display(input.Tokens[0][k[i]])} " +
                $"({Numbers.Text(w[i])})\n");
        if (firstRowOnly)
            text.Append(CultureInfo.InvariantCulture,
                $"(only row 0 of the {input.Batch} rows was run: the whole input does not fit the memory budget)\n");
        return (title, [fragment], text.ToString());
    }

    static (string, HtmlContent[], string) Scores(ScoresView v, ExperimentState state)
    {
        var kinds = v.Score is ScoreKind only ? [only] : state.Scores.Keys.Order().ToArray();
        if (kinds.Length == 0) throw new InvalidOperationException("no scores to show yet: run `score ...` first");
        var tables = kinds.Select(kind => state.Scores.GetValueOrDefault(kind) ?? HeadStages.ComputeScores(kind, state))
            .ToList();
        var fragments = tables.Select(t => Heatmap.RenderFragment(Numbers.ToFloatGrid(t.Values),
            Enumerable.Range(0, t.Layers).Select(l => $"L{l}").ToArray(),
            Enumerable.Range(0, t.Heads).Select(h => $"H{h}").ToArray(), t.Title)).ToArray();
        var text = string.Join("", tables.Select(t => t.ToText()));
        return ("scores: " + string.Join(", ", kinds.Select(k => Keywords.ScoreKinds.Text(k))), fragments, text);
    }

    static (string, HtmlContent[], string) Tokens(ExperimentState state)
    {
        var model = state.RequireModel().Model;
        var input = state.RequireInput("show tokens");
        using var scope = NewDisposeScope();
        using var hooks = ModelEdits.Attach(model, state);
        // Row 0's own tokens: right padding puts its pads after them, and they are not part of the text.
        int length = input.LastReal(0) + 1;
        var losses = new float[length];
        if (length > 1)
        {
            using var row = input.Row(0, model.Device).narrow(0, 0, length);
            var perToken = TensorData.Flat(model.Loss(row, perToken: true));
            for (int i = 1; i < length; i++) losses[i] = (float)perToken[i - 1];
        }
        var title = $"the tokens of {Printer.Print(input.Source)}, coloured by the loss of predicting each"
            + (input.Batch > 1 ? " (row 0)" : "");
        var fragment = ColoredTokens.RenderFragment(input.Tokens[0][..length], losses, title);
        var text = string.Join("\n",
            input.Tokens.Select((row, r) =>
                $"row {r}: " + string.Join("|", row.Select(Lens.Visualization.TokenText.Display))));
        return (title, [fragment], text);
    }

    public static ExperimentState Cache(CacheStatement s, ExperimentState state)
    {
        if (s.Action == CacheAction.Save) return CacheSave.Run(s, state);
        state = state.WithModel();
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "cache", masked: true);
        var (model, input, tokens) = (pass.Model, pass.Input, pass.Tokens);
        var filter = s.Filter is string glob ? HookedTransformer.NamesFilter(glob) : (_ => true);
        if (Directory.Exists(state.Environment.ReadPath(s.Path)))
            return DatasetCacheLoad.Compare(s, state, pass, filter);
        using var file = SafetensorsFile.Open(state.Environment.ReadPath(s.Path));
        state.Environment.RecordRead("cache", state.Environment.ReadPath(s.Path));
        var names = file.Names.Where(n => model.HookDict.ContainsKey(n) && filter(n)).ToHashSet();
        using var current = model.RunWithCache(tokens, ReturnType.Logits, names.Contains,
            attentionMask: pass.AttentionMask, stopAtLayer: s.StopAtLayer);
        var rows = new List<object[]>();
        foreach (var name in file.Names.Where(names.Contains))
        {
            using var saved = file.Load(name);
            var now = current.Cache[name];
            double diff = CacheDifference.Max(now, saved);
            rows.Add([name, "[" + string.Join(", ", saved.shape) + "]", diff]);
        }
        return state.WithResult(s, new TableValue(["activation", "shape", "max |difference|"], [.. rows])
        {
            Title = $"{s.Path} against this run on {Printer.Print(input.Source)} (nan: the shapes differ)",
        });
    }

    public static ExperimentState Print(PrintStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var model = state.RequireModel().Model;
        switch (s.Subject)
        {
            case PrintHook h:
            {
                var input = state.RequireInput("print");
                var name = model.Hook(h.Hook.FullName).Name;
                var statistics = new ActivationStatistics();
                long[] shape = [];
                // Above the memory budget the rows run in the chunks the checks planned, the statistics combined
                // exactly.
                foreach (var (_, chunk) in BatchChunks.Of(state, s))
                {
                    using var scope = NewDisposeScope();
                    using var pass = new StagePass(state, "print", masked: true, chunk);
                    using var run = model.RunWithCache(pass.Tokens, ReturnType.Logits, n => n == name,
                        attentionMask: pass.AttentionMask);
                    var activation = run.Cache[name].to(ScalarType.Float64);
                    // Texts of different lengths: the statistics are over real tokens' entries only (pads are not part
                    // of any text).
                    statistics.Add(pass.AttentionMask is null
                        ? activation.flatten()
                        : activation.masked_select(Lens.Analysis.MaskedEntries.Real(activation, name,
                            pass.AttentionMask)));
                    shape = activation.shape;
                }
                shape[0] = input.Batch;
                var value = new ActivationValue(name, shape, statistics.Mean, statistics.Std, statistics.Min,
                    statistics.Max, statistics.First)
                {
                    Title = $"{name} on {Printer.Print(input.Source)}"
                        + (input.Mask is null ? "" : " (real tokens' entries only)"), Norm = statistics.Norm,
                };
                return state.WithResult(s, value);
            }
            case PrintName n when state.Bindings.GetValueOrDefault(n.Name) is Binding binding:
                ResultValue bound = binding switch
                {
                    SelectionBinding b => new HeadsValue(b.Heads),
                    InputBinding b => new TokensValue(b.Input.Ids, b.Input.Tokens),
                    PatternBinding b => new MatrixValue("pattern", b.Rows,
                        Enumerable.Range(0, b.Rows.Length).Select(i => $"q{i}").ToArray(),
                        Enumerable.Range(0, b.Rows.Length).Select(i => $"k{i}").ToArray()),
                    _ => throw new ArgumentException($"cannot print {binding.GetType().Name}"),
                };
                return state.WithResult(s, bound with { Title = $"{n.Name} = {Describe(binding)}" });
            case PrintName n when Keywords.ScoreKinds.TryParse(n.Name, out var kind):
                return state.WithResult(s,
                    state.Scores.GetValueOrDefault(kind) ?? HeadStages.ComputeScores(kind, state));
            default:
                throw new KeyNotFoundException($"nothing is called '{s.Subject}'");
        }
    }

    static string Describe(Binding binding) => binding switch
    {
        SelectionBinding b => "heads " + Printer.Print(b.Selection),
        InputBinding b => "input " + Printer.Print(b.Input.Source),
        _ => "pattern",
    };
}
