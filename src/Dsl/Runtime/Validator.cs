using Lens.Hub;
using Lens.Sae;
using Lens.Tokenization;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// The semantic checks run before anything runs: with the model's configuration loaded, every statement is
/// checked against what the experiment will have at that point (the model, the input, the bindings, which
/// scores exist). Layers and heads out of range, strings that are not one token, unknown hooks (with the
/// nearest valid names), unknown models, missing inputs and files, mismatched shapes: all are reported,
/// each at its statement's file:line:column. An empty list means the experiment may run.
/// </summary>
public static class Validator
{
    public static IReadOnlyList<SemanticError> Check(IEnumerable<Statement> statements, ExperimentState start)
    {
        var checker = new Checker(start);
        checker.Sequence(statements);
        return checker.Errors;
    }

    sealed class Checker(ExperimentState start)
    {
        ExperimentState state = start;
        readonly HashSet<ScoreKind> scores = [.. start.Scores.Keys];
        Statement? firstModelUse;
        Statement? modelStatement;
        bool modelFailed;
        readonly HashSet<string> written = [];
        // The latest statement in scope per expectation key: what an `expect` reads, and the shape of its result.
        Dictionary<string, Statement> readable = start.Latest.ToDictionary(kv => kv.Key, kv => kv.Value.Statement);
        // After an input that could not be resolved, statements needing one are not reported again (the first error
        // says it all).
        bool inputFailed;
        readonly HashSet<string> failedInputNames = [];
        long available => Env.MemoryBudget ?? availableOnMachine;
        readonly long availableOnMachine = MemoryEstimate.AvailableBytes();

        public List<SemanticError> Errors { get; } = [];

        ExperimentEnvironment Env => state.Environment;

        void Error(Statement s, string problem, string? near = null) =>
            Errors.Add(SemanticError.At(Env, s, problem, near));

        /// <summary>The config flag a hook point needs that is off in the model and not turned on by `use`, or
        /// null.</summary>
        string? Off(HookedTransformer model, string hookName) =>
            model.DisablingFlag(hookName) is string flag && !state.Flags.Any(f => ExperimentState.FlagName(f) == flag)
                ? flag
                : null;

        public void Sequence(IEnumerable<Statement> statements)
        {
            foreach (var s in statements) Statement(s);
        }

        void Statement(Statement s)
        {
            switch (s)
            {
                case ModelStatement m: ModelStatement(m); return;
                case DeviceStatement d: DeviceStatement(d); return;
                case SeedStatement seed: state = state with { Seed = seed.Seed }; return;
                case UseStatement use: state = state with { Flags = state.Flags.Add(use.Flag) }; return;
                case LetStatement { Value: PatternValue p } let: Pattern(let, p); return;
            }
            if (Model(s) is not HookedTransformer model) return;
            switch (s)
            {
                case InputStatement i:
                    if (i.Source is InputName failed && failedInputNames.Contains(failed.Name))
                    {
                        inputFailed = true;
                        state = state with { Input = null };
                    }
                    else if (Resolve(s, i.Source, model) is ExperimentInput input)
                    {
                        state = state with { Input = input };
                        inputFailed = false;
                    }
                    else { inputFailed = true; state = state with { Input = null }; }
                    break;
                case LetStatement { Value: SelectionValue v } let:
                    Selection(s, v.Selection, model);
                    Bind(let.Name, new SelectionBinding(v.Selection, []));
                    break;
                case LetStatement { Value: InputValue v } let:
                    if (Resolve(s, v.Source, model) is ExperimentInput bound)
                    {
                        Bind(let.Name, new InputBinding(bound));
                        failedInputNames.Remove(let.Name);
                    }
                    else failedInputNames.Add(let.Name);
                    break;
                case ScoreStatement score: Score(score); break;
                case DetectStatement detect: Detect(detect); break;
                case HeadsStatement heads: Selection(s, heads.Selection, model); break;
                case InterventionStatement intervention: Intervention(intervention, model); break;
                case RunStatement or PredictStatement or LogitLensStatement or LogitsStatement: NeedInput(s); break;
                case LossStatement:
                    if (NeedInput(s) is { Positions: < 2 })
                        Error(s, "loss needs an input of at least 2 tokens (each position predicts the next)");
                    break;
                case GenerateStatement g: Generate(g, model); break;
                case CircuitStatement c: Selection(s, c.Heads, model); break;
                case ComposeStatement c: Selection(s, c.From, model); Selection(s, c.To, model); break;
                case AttributeStatement a:
                    NeedInput(s);
                    if (a.Target is { } target)
                    {
                        Token(s, target.Token, model);
                        if (target.Versus is { } vs) Token(s, vs, model);
                    }
                    break;
                case PatchStatement p: Patch(p, p.Target, p.Source, p.Metric, model); break;
                case AttributePatchStatement p: Patch(p, p.Target, p.Source, p.Metric, model); break;
                case ShowStatement show: Show(show, model); break;
                case CacheStatement cache: Cache(cache, model); break;
                case PrintStatement print: Print(print, model); break;
                case ExpectStatement expect: Expect(expect, expect.Target, model, text: false); break;
                case ExpectTextStatement expect: Expect(expect, expect.Target, model, text: true); break;
                case SaeLoadStatement load: SaeLoad(load, model); break;
                case SaeMetricsStatement metrics: SaeMetrics(metrics); break;
                case FeaturesTopStatement top:
                    if (NeedSae(s) is not null && NeedInput(s) is { } topInput && top.Position is int at
                        && at >= topInput.Positions)
                        Error(s,
                            $"position {at} is out of range: the input has {topInput.Positions} tokens (pos " +
                            $"0..{topInput.Positions - 1})", $"pos {at}");
                    break;
                case FeatureLogitsStatement logits:
                    if (NeedSae(s) is { } logitSae && Feature(s, logitSae, logits.Feature))
                        try { using var weights = model.LogitWeights(logitSae.Sae, logits.Feature); }
                        catch (SaeException e) { Error(s, e.Message, "logits"); }
                    break;
                case SteerStatement steer:
                    if (NeedSae(s) is { } steered && Feature(s, steered, steer.Feature))
                        state = state with
                        {
                            FeatureEdits = state.FeatureEdits.Add(new FeatureEdit(Printer.Print(s), steered.Sae,
                                steer.Feature, steer.Value, steer.Set))
                        };
                    break;
            }
            if (ExpectTargets.KeyOf(s) is { } key) readable[key] = s;
            Memory(s, model);
        }

        /// <summary>
        /// The estimated memory of the statement's forward passes on the current input (weights, plus every layer's
        /// activations where it caches them): the largest is recorded for `lens check`, one above the machine's
        /// free memory is refused here, before anything runs.
        /// </summary>
        void Memory(Statement s, HookedTransformer model)
        {
            bool? cacheEveryLayer = s switch
            {
                RunStatement or LossStatement or LogitsStatement or PredictStatement or GenerateStatement
                    or PrintStatement
                    or ShowStatement { View: TokensView } => false,
                ScoreStatement or DetectStatement or LogitLensStatement or AttributeStatement or CacheStatement
                    or PatchStatement
                    or AttributePatchStatement or ShowStatement { View: PatternView } => true,
                _ => null,
            };
            if (cacheEveryLayer is not bool all || state.Input is not ExperimentInput input) return;
            var cfg = model.Config;
            var positions = input.Positions + (s is GenerateStatement g ? g.MaxNewTokens : 0);
            // detect_head runs each row alone; show tokens runs only row 0 (the one it colours).
            int rows = s is DetectStatement or ShowStatement { View: TokensView } ? 1 : input.Batch;
            // Statements whose results are per row, means over rows or statistics over entries run in chunks of rows
            // when the whole batch does not fit.
            Env.ChunkPlans.Remove(s);
            // Greedy generation too (each row generates as if alone); sampling is not, since chunks would draw in
            // another order.
            bool chunked = s is RunStatement or LossStatement or LogitsStatement or PredictStatement or ScoreStatement
                or AttributeStatement or LogitLensStatement
                               or PatchStatement or AttributePatchStatement
                               or CacheStatement { Action: CacheAction.Save } or PrintStatement { Subject: PrintHook }
                           || s is GenerateStatement g0 && ForwardStages.GenerationOptionsOf(g0, 0).IsGreedy;
            // show pattern draws row 0 only: above the budget it runs that row alone.
            bool firstRowOnly = s is ShowStatement { View: PatternView };
            int fit = BatchChunks.RowsThatFit(cfg, input.Batch, positions, all, available);
            if (s is GenerateStatement && !chunked && fit > 0 && fit < input.Batch)
            {
                var needed = MemoryEstimate.Describe(
                    MemoryEstimate.ParameterBytes(cfg) + MemoryEstimate.ForwardBytes(cfg, input.Batch, positions, all));
                Error(s, "sampled generate cannot run in chunks of rows: every row draws from one random stream in "
                    + "batch order, so chunks would sample other tokens than one batch does; on an input of "
                    + $"[{input.Batch}, {input.Positions}] tokens it needs an estimated {needed} "
                    + $"of memory but this machine has {MemoryEstimate.Describe(available)} available: give at most "
                    + $"{fit} rows, fewer new tokens, or generate greedily (`generate N greedy` runs in chunks)");
                return;
            }
            if ((chunked || firstRowOnly) && fit < input.Batch)
            {
                if (fit == 0)
                {
                    var needed = MemoryEstimate.Describe(
                        MemoryEstimate.ParameterBytes(cfg) + MemoryEstimate.ForwardBytes(cfg, 1, positions, all));
                    Error(s, $"even one row of the input ([1, {input.Positions}] tokens) needs an estimated "
                        + $"{needed} of memory but this machine has "
                        + $"{MemoryEstimate.Describe(available)} available: use shorter inputs or a smaller model");
                    return;
                }
                if (firstRowOnly)
                {
                    rows = 1;
                    Env.ChunkPlans[s] = new ChunkPlan(s, 1, 1) { FirstRowOnly = true };
                }
                else
                {
                    rows = fit;
                    Env.ChunkPlans[s] = new ChunkPlan(s, rows, (input.Batch + rows - 1) / rows);
                }
            }
            var bytes = MemoryEstimate.ParameterBytes(cfg) + MemoryEstimate.ForwardBytes(cfg, rows, positions, all);
            if (Env.EstimatedPeak is not { } peak || bytes > peak.Bytes) Env.EstimatedPeak = new MemoryPeak(bytes, s);
            if (bytes > available)
                Error(s,
                    $"this statement needs an estimated {MemoryEstimate.Describe(bytes)} of memory on an input of "
                         + $"[{input.Batch}, {input.Positions}] tokens "
                         + $"but this machine has {MemoryEstimate.Describe(available)} available: use fewer or shorter "
                         + $"inputs");
        }

        // ---- model, device, seed ----------------------------------------------------------------

        void ModelStatement(ModelStatement m)
        {
            if (modelStatement is not null)
                Error(m,
                    $"the model is already set (line {modelStatement.Span.Line}): an experiment runs on one model");
            else if (firstModelUse is not null || state.Model is not null)
                Error(m, firstModelUse is null
                    ? "the model is already loaded: `model` must come before the statements that use it"
                    : $"`model` must come before the statements that use the model (line {firstModelUse.Span.Line} " +
                        $"uses it)");
            else
            {
                modelStatement = m;
                state = state with { ModelReference = m.Reference };
            }
        }

        void DeviceStatement(DeviceStatement d)
        {
            var device = DeviceSpec.Of(d);
            if (firstModelUse is not null || state.Model is not null)
                Error(d, "`device` must come before the statements that use the model");
            else if (Env.DeviceOverride is null && device.Unavailable() is string why)
                Error(d, why, device.ToString());
            else state = state with { Device = device };
        }

        /// <summary>The model for a statement that needs one, loading it on first use; null when it cannot be loaded
        /// (reported once).</summary>
        HookedTransformer? Model(Statement s)
        {
            if (modelFailed) return null;
            firstModelUse ??= s;
            if (state.Model is { } handle) return handle.Model;
            try
            {
                if (Env.DeviceOverride?.Unavailable() is string why) throw new ArgumentException(why);
                state = state.WithModel();
                return state.Model!.Model;
            }
            catch (Exception e) when (IsUserError(e))
            {
                modelFailed = true;
                var at = modelStatement is not null && Env.ModelOverride is null ? modelStatement : s;
                var known = Lens.Pretrained.OfficialModels.AllNames.Append(ExperimentEnvironment.DefaultModel);
                var near = new ModelStatement(state.ModelName).Kind == ModelReferenceKind.Name
                    ? Suggest.Nearest(state.ModelName, known)
                    : [];
                Error(at,
                    $"cannot load model '{state.ModelName}': {Plain(e)}"
                    + (near.Count > 0 ? $"; did you mean {string.Join(" or ", near.Select(n => $"'{n}'"))}?" : ""),
                    at is ModelStatement m ? m.Reference : null);
                return null;
            }
        }

        // ---- inputs -------------------------------------------------------------------------------

        ExperimentInput? Resolve(Statement s, InputSource source, HookedTransformer model)
        {
            ExperimentInput input;
            try { input = Inputs.Resolve(source, model, state); }
            catch (Exception e) when (IsUserError(e))
            {
                Error(s, Plain(e),
                    e is ArgumentOutOfRangeException && source is DatasetInput d
                        ? DatasetRows.RowsText(d)
                        : Near(source));
                return null;
            }
            var cfg = model.Config;
            foreach (var id in input.Ids.SelectMany(r => r).Where(id => id < 0 || id >= cfg.DVocab).Distinct().Take(1))
            {
                Error(s,
                    $"token id {id} is out of range: the model's vocabulary has {cfg.DVocab} tokens (ids " +
                    $"0..{cfg.DVocab - 1})", id.ToString(CultureInfo.InvariantCulture));
                return null;
            }
            if (input.Positions > cfg.NCtx)
            {
                Error(s, $"the input has {input.Positions} tokens but the model's context holds {cfg.NCtx} (n_ctx)",
                    Near(source));
                return null;
            }
            return input;
        }

        static string? Near(InputSource source) => source switch
        {
            FileInput f => f.Path,
            DatasetInput d => d.Path,
            RepeatRandomInput => "repeat",
            InputName n => n.Name,
            _ => null,
        };

        ExperimentInput? NeedInput(Statement s)
        {
            if (state.Input is null)
            {
                if (!inputFailed)
                    Error(s,
                        $"`{Printer.Print(s).Split(' ')[0]}` needs an input: add an `input ...` statement before it");
                return null;
            }
            return state.Input;
        }

        void Bind(string name, Binding binding) =>
            state = state with { Bindings = state.Bindings.SetItem(name, binding) };

        void Pattern(LetStatement let, PatternValue p)
        {
            var rows = p.Rows.Select(r => r.ToArray()).ToArray();
            for (int i = 0; i < rows.Length; i++)
                for (int j = i + 1; j < rows[i].Length; j++)
                    if (rows[i][j] != 0)
                    {
                        Error(let,
                            $"pattern '{let.Name}' must be lower triangular (a query cannot attend to later keys): " +
                            $"row {i} has {Printer.Number(rows[i][j])} in column {j}", "pattern");
                        return;
                    }
            Bind(let.Name, new PatternBinding(rows));
        }

        // ---- heads ---------------------------------------------------------------------------------

        void Selection(Statement s, Selection selection, HookedTransformer model)
        {
            var cfg = model.Config;
            foreach (var (node, layer, head) in Selections.Indices(selection))
            {
                if (layer is int l && l >= cfg.NLayers)
                    Error(s, $"layer {l} is out of range: the model has {cfg.NLayers} layers (L0..L{cfg.NLayers - 1})",
                        Printer.Print(node));
                else if (head is int h && h >= cfg.NHeads)
                    Error(s,
                        $"head {h} is out of range: the model has {cfg.NHeads} heads per layer (H0..H{cfg.NHeads - 1})",
                        Printer.Print(node));
            }
            foreach (var kind in Selections.ScoreKinds(selection).Distinct())
                if (ScoresUnavailable(kind) is string why)
                    Error(s,
                        $"`where {Keywords.ScoreKinds.Text(kind)} ...` needs {Keywords.ScoreKinds.Text(kind)} " +
                        $"scores: {why}", "where");
        }

        /// <summary>Why scores of a kind cannot be had at this point (null: they were computed, or can be from the
        /// current input).</summary>
        string? ScoresUnavailable(ScoreKind kind)
        {
            if (scores.Contains(kind)) return null;
            var name = Keywords.ScoreKinds.Text(kind);
            if (state.Input is null) return inputFailed ? null : $"run `score {name}` on an input first";
            if (kind != ScoreKind.PrevToken && state.Input.NotRepeated(kind == ScoreKind.Induction) is string why)
                return $"run `score {name}` first, on an input whose rows are a block repeated ({why})";
            return null;
        }

        void Score(ScoreStatement s)
        {
            if (NeedInput(s) is not ExperimentInput input) return;
            var name = Keywords.ScoreKinds.Text(s.Kind);
            if (s.Kind != ScoreKind.PrevToken && input.NotRepeated(s.Kind == ScoreKind.Induction) is string why)
                Error(s,
                    $"`score {name}` needs an input whose rows are a block repeated, since the stripe it reads " +
                    $"depends on the block's length: {why}");
            else if (input.Positions < 2)
                Error(s, $"`score {name}` needs an input of at least 2 tokens");
            else scores.Add(s.Kind);
        }

        void Detect(DetectStatement s)
        {
            if (NeedInput(s) is not ExperimentInput input) return;
            if (input.Positions < 2) Error(s, "`detect` needs an input of at least 2 tokens");
            else if (s.Pattern is PatternName p && state.Bindings.GetValueOrDefault(p.Name) is PatternBinding pattern
                     && Enumerable.Range(0, input.Batch)
                     .FirstOrDefault(r => input.RealIds(r).Length != pattern.Rows.Length, -1) is int odd and >= 0)
                Error(s, input.Mask is null
                    ? $"pattern '{p.Name}' is {pattern.Rows.Length}×{pattern.Rows.Length} but the input " +
                        $"has {input.Positions} tokens: the pattern must be [pos, pos]"
                    : $"pattern '{p.Name}' is {pattern.Rows.Length}×{pattern.Rows.Length} but row {odd + 1} of the " +
                        $"input has {input.RealIds(odd).Length} tokens: a pattern fits texts of its own length only",
                        p.Name);
        }

        // ---- interventions ---------------------------------------------------------------------------

        void Intervention(InterventionStatement s, HookedTransformer model)
        {
            var ablation = (Ablation)s.Intervention;
            var cfg = model.Config;
            bool hasMlp = !cfg.AttnOnly;
            void Layer(int layer, string near)
            {
                if (layer >= cfg.NLayers)
                    Error(s,
                        $"layer {layer} is out of range: the model has {cfg.NLayers} layers (L0..L{cfg.NLayers - 1})",
                        near);
            }
            switch (ablation.Target)
            {
                case HeadsTarget t: Selection(s, t.Selection, model); break;
                case AttnTarget t: Layer(t.Layer, $"L{t.Layer}"); break;
                case MlpTarget t:
                    Layer(t.Layer, $"L{t.Layer}");
                    if (!hasMlp) Error(s, $"model '{cfg.ModelName}' is attention-only: it has no MLP to ablate", "mlp");
                    break;
                case FeatureTarget t:
                    if (ablation.Mode != AblationMode.Zero)
                        Error(s,
                            $"a feature ablation sets the feature to 0 " +
                            $"(zero); {Keywords.AblationModes.Text(ablation.Mode)} ablation of SAE features is not " +
                            $"supported", Keywords.AblationModes.Text(ablation.Mode));
                    else if (NeedSae(s) is { } sae && Feature(s, sae, t.Feature))
                        state = state with
                        {
                            FeatureEdits = state.FeatureEdits.Add(new FeatureEdit(Printer.Print(s.Intervention),
                                sae.Sae, t.Feature, 0, true))
                        };
                    break;
                case NeuronsTarget t:
                    Layer(t.Layer, $"L{t.Layer}");
                    if (!hasMlp) Error(s, $"model '{cfg.ModelName}' is attention-only: it has no MLP neurons", "mlp");
                    else foreach (var n in t.Neurons.Where(n => n >= cfg.DMlp).Distinct())
                        Error(s, $"neuron {n} is out of range: the MLP has {cfg.DMlp} neurons (N0..N{cfg.DMlp - 1})",
                            $"N{n}");
                    break;
            }
            if (ablation.Mode != AblationMode.Zero && ablation.Target is not FeatureTarget && state.Input is null
                && !inputFailed)
                Error(s,
                    $"a {Keywords.AblationModes.Text(ablation.Mode)} ablation takes its reference activations from " +
                    $"the current input: add an `input ...` statement before it",
                    Keywords.AblationModes.Text(ablation.Mode));
            if (s.Body is null) return;
            var outer = state;
            var outerReadable = new Dictionary<string, Statement>(readable);
            Sequence(s.Body);
            state = state with { Bindings = outer.Bindings, Saes = outer.Saes, FeatureEdits = outer.FeatureEdits };
            readable = outerReadable;
        }

        // ---- running -----------------------------------------------------------------------------------

        void Generate(GenerateStatement g, HookedTransformer model)
        {
            if (NeedInput(g) is not ExperimentInput input) return;
            if ((long)input.Positions + g.MaxNewTokens > model.Config.NCtx)
                Error(g,
                    $"the input has {input.Positions} tokens; {g.MaxNewTokens} more would exceed the model's context " +
                    $"of {model.Config.NCtx} (n_ctx)", g.MaxNewTokens.ToString(CultureInfo.InvariantCulture));
        }

        void Token(Statement s, TokenRef token, HookedTransformer model)
        {
            if (TokenProblem(token, model) is string problem)
                Error(s, problem,
                    token is TokenText text
                        ? Printer.Quote(text.Text)
                        : ((TokenId)token).Id.ToString(CultureInfo.InvariantCulture));
        }

        static string? TokenProblem(TokenRef token, HookedTransformer model)
        {
            switch (token)
            {
                case TokenId id when id.Id >= model.Config.DVocabOut:
                    return $"token id {id.Id} is out of range: the model predicts {model.Config.DVocabOut} tokens " +
                        $"(ids 0..{model.Config.DVocabOut - 1})";
                case TokenText text:
                    if (model.Tokenizer is not ITokenizer tokenizer)
                        return $"model '{model.Config.ModelName}' has no tokenizer: name tokens by id";
                    if (tokenizer.Encode(text.Text) is { Count: not 1 } ids)
                        return $"{Printer.Quote(text.Text)} is not one token: {tokenizer.Name} splits it "
                               + $"into {ids.Count} tokens "
                               + $"[{string.Join(", ", ids.Select(i => Printer.Quote(tokenizer.IdToToken(i))))}]";
                    return null;
                default:
                    return null;
            }
        }

        void Patch(Statement p, PatchTarget target, InputSource from, Metric metric, HookedTransformer model)
        {
            var current = NeedInput(p);
            if (target == PatchTarget.MlpOut && model.Config.AttnOnly)
                Error(p, $"model '{model.Config.ModelName}' is attention-only: it has no mlp_out to patch", "mlp_out");
            switch (metric)
            {
                case LogitDiffMetric m: Token(p, m.Correct, model); Token(p, m.Incorrect, model); break;
                case ProbMetric m: Token(p, m.Token, model); break;
            }
            if (Resolve(p, from, model) is not ExperimentInput source || current is null) return;
            if (source.Batch != current.Batch || source.Positions != current.Positions)
                Error(p,
                    $"patching needs inputs of the same shape: the current input is "
                         + $"[{current.Batch}, {current.Positions}] tokens "
                         + $"but the source is [{source.Batch}, {source.Positions}]", "from");
            else if (current.MisalignedWith(source) is string why) Error(p, why, "from");
        }

        // ---- output ----------------------------------------------------------------------------------------

        /// <summary>A file the statement writes must be one that can be written (checked here, before anything
        /// runs).</summary>
        void Output(Statement s, string path)
        {
            if (Lens.IO.OutputPaths.FileProblem(Env.WritePath(path), path) is string problem) Error(s, problem, path);
        }

        void Show(ShowStatement s, HookedTransformer model)
        {
            if (s.OutputPath is string output) Output(s, output);
            switch (s.View)
            {
                case PatternView v: NeedInput(s); Selection(s, v.Heads, model); break;
                case TokensView: NeedInput(s); break;
                case ScoresView { Score: ScoreKind kind }:
                    if (ScoresUnavailable(kind) is string why)
                        Error(s, $"no {Keywords.ScoreKinds.Text(kind)} scores to show: {why}",
                            Keywords.ScoreKinds.Text(kind));
                    break;
                case ScoresView:
                    if (scores.Count == 0 && !inputFailed)
                        Error(s, "no scores to show yet: run `score induction` (or prev_token, duplicate_token) first");
                    break;
            }
        }

        void Cache(CacheStatement s, HookedTransformer model)
        {
            NeedInput(s);
            if (s.Filter is string filter
                && !model.HookNames.Concat(SaeHookNames()).Any(HookedTransformer.NamesFilter(filter)))
            {
                var globs =
                    model.HookNames.Select(n => System.Text.RegularExpressions.Regex.Replace(n, @"\.\d+\.", ".*."))
                        .Distinct();
                var near = Suggestions.Nearest(filter, globs.Concat(model.HookNames));
                Error(s, $"filter \"{filter}\" matches no hook point of the model"
                         + (near.Count > 0 ? $"; did you mean {string.Join(", ", near.Select(n => $"\"{n}\""))}?" : ""),
                         Printer.Quote(filter));
            }
            else if (s.Filter is string only
                && model.HookNames.Where(HookedTransformer.NamesFilter(only)).ToList() is { Count: > 0 } selected
                     && selected.All(n => Off(model, n) is not null))
                Error(s, $"filter \"{only}\" selects only hook points that never fire in this model: "
                         + HookedTransformer.DisabledHookMessage(selected[0], Off(model, selected[0])!),
                         Printer.Quote(only));
            if (s.StopAtLayer is int stop && stop > model.Config.NLayers)
                Error(s,
                    $"stop_at_layer {stop} is out of range: model '{model.Config.ModelName}' " +
                    $"has {model.Config.NLayers} layers (stop_at_layer 0 … {model.Config.NLayers})",
                      stop.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (s.Action == CacheAction.Save) { Output(s, s.Path); written.Add(Env.WritePath(s.Path)); }
            else if (Directory.Exists(Env.ReadPath(s.Path)))
            {
                if (state.Input is { } input)
                    try { DatasetCacheLoad.Check(Env, s.Path, input); }
                    catch (Exception e) when (IsUserError(e)) { Error(s, Plain(e), s.Path); }
            }
            else if (!File.Exists(Env.ReadPath(s.Path)) && !written.Contains(Env.ReadPath(s.Path)))
                Error(s, $"cache file '{s.Path}' not found (a relative path is relative to the experiment's folder)",
                    s.Path);
        }

        void Print(PrintStatement s, HookedTransformer model)
        {
            switch (s.Subject)
            {
                case PrintHook h:
                    NeedInput(s);
                    if (SaeHookNames().Contains(h.Hook.FullName)) break;
                    try
                    {
                        var hook = model.Hook(h.Hook.FullName);
                        if (Off(model, hook.Name) is string flag)
                            Error(s, HookedTransformer.DisabledHookMessage(hook.Name, flag), Printer.Print(h.Hook));
                    }
                    catch (ArgumentException e) { Error(s, e.Message, Printer.Print(h.Hook)); }
                    break;
                case PrintName n:
                    if (state.Bindings.ContainsKey(n.Name)) break;
                    if (Keywords.ScoreKinds.TryParse(n.Name, out var kind))
                    {
                        if (ScoresUnavailable(kind) is string why)
                            Error(s, $"no {n.Name} scores to print: {why}", n.Name);
                        break;
                    }
                    var known = state.Bindings.Keys.Concat(Keywords.ScoreKinds.Words).ToList();
                    var near = Suggest.Nearest(n.Name, known);
                    Error(s,
                        $"nothing is called '{n.Name}': print takes a let-bound name, a score "
                             + $"({Keywords.ScoreKinds.Listing}) or a hook"
                             + (near.Count > 0
                                 ? $"; did you mean {string.Join(" or ", near.Select(x => $"'{x}'"))}?"
                                 : ""), n.Name);
                    break;
            }
        }

        // ---- expectations ------------------------------------------------------------------------------

        void Expect(Statement e, ExpectTarget target, HookedTransformer model, bool text)
        {
            var cfg = model.Config;
            var (key, _) = ExpectTargets.Split(target);
            var context = new TargetContext(cfg.NLayers, cfg.NHeads, state.Input?.Positions, state.Input?.Batch,
                name => state.Bindings.GetValueOrDefault(name) is PatternBinding)
            {
                Producer = readable.GetValueOrDefault(key),
                TokenProblem =
                    word => TokenProblem(word.All(char.IsAsciiDigit) && word.Length > 0
                        ? new TokenId(int.TryParse(word, System.Globalization.NumberStyles.None,
                            System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : int.MaxValue)
                        : new TokenText(word), model), HookProblem = name =>
                {
                    if (SaeHookNames().Contains(name)) return null;
                    try { model.Hook(name); return null; }
                    catch (ArgumentException ex) { return Plain(ex); }
                },
            };
            if ((text
                ? ExpectTargets.TextProblem(target, context)
                : ExpectTargets.Problem(target, context)) is var (problem, near))
            {
                Error(e, problem, near);
                return;
            }
            if (Keywords.ScoreKinds.TryParse(key, out var kind) && !readable.ContainsKey(key))
            {
                // Like `where`, a score target computes the scores on the current input when no `score` is in scope.
                if (ScoresUnavailable(kind) is string why)
                    Error(e, $"`expect {key} ...` needs {key} scores: {why}", target.Words[0]);
            }
            else if (!readable.ContainsKey(key))
                Error(e,
                    $"`expect {key} ...` reads the most recent `{ExpectTargets.Producer(key)}` result in scope, and " +
                    $"there is none here: run `{ExpectTargets.Producer(key)}` before it", target.Words[0]);
        }

        // ---- sparse autoencoders -------------------------------------------------------------------------

        /// <summary>The hook points of the SAEs in force (blocks.0.hook_resid_post.hook_sae_acts_post, ...).</summary>
        IEnumerable<string> SaeHookNames() =>
            state.Saes.SelectMany(a => SparseAutoencoder.HookSuffixes.Select(suffix => a.Sae.HookName + "." + suffix));

        /// <summary>The most recent SAE, or null (reported) when none is loaded.</summary>
        ActiveSae? NeedSae(Statement s)
        {
            if (state.Saes.LastOrDefault() is { } sae) return sae;
            if (!saeFailed)
                Error(s, $"`{Printer.Print(s).Split(' ')[0]}` needs an SAE: add `sae load PATH [at HOOK]` before it");
            return null;
        }

        bool saeFailed;

        bool Feature(Statement s, ActiveSae sae, int feature)
        {
            if (feature < sae.Sae.Config.DSae) return true;
            Error(s,
                $"feature {feature} is out of range: the SAE at {sae.Sae.HookName} has {sae.Sae.Config.DSae} " +
                $"features (0..{sae.Sae.Config.DSae - 1})", feature.ToString(CultureInfo.InvariantCulture));
            return false;
        }

        void SaeLoad(SaeLoadStatement s, HookedTransformer model)
        {
            var path = Env.SaeLocation(s.Path);
            saeFailed = true;
            bool hubId = SaeHubSource.IsRepoId(path);
            if (!hubId && !File.Exists(path) && !Directory.Exists(path))
            {
                Error(s, $"SAE '{s.Path}' not found (a relative path is relative to the experiment's folder)", s.Path);
                return;
            }
            if (!hubId && File.Exists(path) && !path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
            {
                Error(s,
                    $"'{s.Path}' is a file, not an SAE: give the SAE's folder (cfg.json + sae_weights.safetensors, " +
                    $"SAELens) or Gemma Scope's params.npz", s.Path);
                return;
            }
            SparseAutoencoder sae;
            try { sae = Env.LoadSae(path, s.Hook, state.EffectiveDevice); }
            catch (Exception e) when (IsUserError(e))
            {
                Error(s, $"cannot load the SAE '{s.Path}': {Plain(e)}", s.Path);
                return;
            }
            var near = s.Hook ?? s.Path;
            try { model.Hook(sae.HookName); }
            catch (ArgumentException e)
            {
                Error(s,
                    $"the SAE attaches at {sae.HookName}, which model '{model.Config.ModelName}' does not " +
                    $"have: {Plain(e)}", near);
                return;
            }
            if (Off(model, sae.HookName) is string flag)
            {
                Error(s, HookedTransformer.DisabledHookMessage(sae.HookName, flag), near);
                return;
            }
            if (state.Saes.FirstOrDefault(a => a.Sae.HookName == sae.HookName) is { } other)
            {
                Error(s, $"an SAE is already loaded at {sae.HookName} (`{other.Text}`): one SAE per hook point", near);
                return;
            }
            if (sae.Dtype != model.Dtype)
            {
                Error(s,
                    $"the SAE's dtype is {sae.Dtype} but the model's {model.Dtype}: load the model in the SAE's dtype",
                    s.Path);
                return;
            }
            if (HookWidth(model, sae) is long width && width != sae.Config.DIn)
            {
                Error(s, $"the SAE reads {sae.Config.DIn} values per token (d_in) but {sae.HookName} has {width}",
                    s.Path);
                return;
            }
            saeFailed = false;
            state = state with { Saes = state.Saes.Add(new ActiveSae(Printer.Print(s), sae, s.ErrorTerm)) };
        }

        /// <summary>The width of the activation at the SAE's hook per token (heads flattened for a hook_z SAE), from a
        /// one-token run.</summary>
        static long? HookWidth(HookedTransformer model, SparseAutoencoder sae)
        {
            using var scope = NewDisposeScope();
            using var token = zeros([1, 1], dtype: ScalarType.Int64, device: model.Device);
            using var run = model.RunWithCache(token, ReturnType.None, n => n == sae.HookName);
            if (!run.Cache.ContainsKey(sae.HookName)) return null;
            var shape = run.Cache[sae.HookName].shape;
            return sae.Config.ReshapeActivations == "hook_z" && shape.Length >= 4 ? shape[^2] * shape[^1] : shape[^1];
        }

        void SaeMetrics(SaeMetricsStatement s)
        {
            if (NeedSae(s) is null) return;
            if (NeedInput(s) is { Positions: < 2 })
                Error(s, "`sae metrics` needs an input of at least 2 tokens (its CE loss predicts each next token)");
            var others = new List<string>();
            if (state.Saes.Count > 1) others.Add($"another SAE (`{state.Saes[0].Text}`)");
            others.AddRange(state.Interventions.Select(i => $"`{i.Text}`"));
            others.AddRange(state.FeatureEdits.Select(f => $"`{f.Text}`"));
            if (others.Count > 0)
                Error(s,
                    "`sae metrics` measures the most recent SAE alone on the unchanged model, as SAELens's run_evals "
                         + "does, "
                         + $"so it does not run while {string.Join(", ", others)} is in force: put it before them or "
                         + $"in a block without them");
        }

        internal static bool IsUserError(Exception e) =>
            e is ArgumentException or InvalidOperationException or IOException or KeyNotFoundException
                or CheckpointException
                or FormatException or NotSupportedException or Lens.IO.SafetensorsException
            || e.GetType().Namespace?.StartsWith("Lens", StringComparison.Ordinal) == true;
    }

    /// <summary>An exception's message without .NET's " (Parameter 'x')" suffix.</summary>
    internal static string Plain(Exception e) =>
        e is ArgumentException { ParamName: string p }
            && e.Message.EndsWith($" (Parameter '{p}')", StringComparison.Ordinal)
            ? e.Message[..^$" (Parameter '{p}')".Length]
            : e.Message;
}
