using Sprache;
using static Lens.Dsl.Tokens;

namespace Lens.Dsl;

/// <summary>
/// The Sprache grammar of one statement header (the text of a statement on its line, without its block):
/// the command word picks a per-command parser, which ends by requiring the end of the statement.
/// Let-bound names are read as name nodes here and resolved afterwards (<see cref="NameResolver"/>).
/// </summary>
internal sealed partial class Grammar
{
    private static readonly IReadOnlyList<string> AfterSelection = [",", "except"];
    private static readonly IReadOnlyList<string> AfterList = [","];

    // Built on first use: the parsers read static rules of this partial class, initialized in no fixed order across
    // its files.
    private static readonly Lazy<Grammar> instance = new(() => new Grammar());

    /// <summary>The grammar holds no state, so one instance serves every parse.</summary>
    public static Grammar Instance => instance.Value;

    /// <summary>The command table, in the order the language documents the commands and lists them in errors.</summary>
    private readonly OrderedDictionary<string, Parser<Statement>> commands = [];
    private readonly Parser<Selection> selection = OnFirstUse(SelectionParser);
    private readonly Parser<InputSource> inputSource = OnFirstUse(InputSourceParser);

    public Grammar()
    {
        var builders = new OrderedDictionary<string, Func<Parser<Statement>>>
        {
            ["model"] = Model,
            ["seed"] = Seed,
            ["device"] = Device,
            ["input"] = InputCommand,
            ["score"] = Score,
            ["detect"] = Detect,
            ["heads"] = Heads,
            ["let"] = Let,
            ["ablate"] = Ablate,
            ["run"] = () => NoArguments(() => new RunStatement()),
            ["loss"] = () => NoArguments(() => new LossStatement()),
            ["logits"] = Logits,
            ["predict"] = () => NoArguments(() => new PredictStatement()),
            ["generate"] = Generate,
            ["circuit"] = Circuit,
            ["compose"] = Compose,
            ["attribute"] = () => AttributePatch().XOr(Attribute()),
            ["logit_lens"] = () => NoArguments(() => new LogitLensStatement()),
            ["patch"] = Patch,
            ["show"] = Show,
            ["cache"] = Cache,
            ["print"] = PrintCommand,
            ["use"] = Use,
            ["expect"] = Expect,
            ["sae"] = Sae,
            ["features"] = Features,
            ["steer"] = Steer,
        };
        foreach (var (word, build) in builders) commands[word] = OnFirstUse(build);
    }

    /// <summary>
    /// A parser built when it is first run. Building all 27 commands' parsers up front cost each `lens` process about
    /// 45 ms of JIT compilation (Sprache's generic combinators, compiled anew for each value type), although an
    /// experiment uses a few of them. (Sprache's <c>Parse.Ref</c> defers too, but it is meant for recursion: it
    /// memoizes results on the input to catch left recursion, and may build the parser twice on two threads.)
    /// </summary>
    private static Parser<T> OnFirstUse<T>(Func<Parser<T>> build)
    {
        var parser = new Lazy<Parser<T>>(build);
        return input => parser.Value(input);
    }

    public IReadOnlyList<string> CommandWords => [.. commands.Keys];

    public IResult<Statement> Parse(IInput input) => Dispatch("a command", "command", commands)(input);

    private static Parser<Statement> NoArguments(Func<Statement> create) => Options.End().Select(_ => create());

    private static readonly Option Top = Option.Of("top", Count("a count after 'top'", Ranges.Top));

    private static Parser<Statement> Model() =>
        from reference in PathArgument("a model name, hub id or path", "the model reference")
        from end in Options.End()
        select (Statement)new ModelStatement(reference.Value);

    private static Parser<Statement> Seed() =>
        from seed in Integer("a seed (an integer)")
        from end in Options.End()
        select Ranges.Seed.Problem(seed.Value) is { } problem
            ? throw new SyntaxError(seed.Start, problem, ["a seed (an integer)"])
            : (Statement)new SeedStatement(seed.Value);

    private static Parser<Statement> Use() =>
        from flag in Choice(Keywords.ModelFlags, "flag")
        from end in Options.End()
        select (Statement)new UseStatement(flag.Value);

    private static Parser<Statement> Device() =>
        from device in Choice(Keywords.Devices, "device")
        from index in Symbol(":").Then(_ => Count("a device index after ':'", Ranges.DeviceIndex)).XOptional()
        from end in Options.End()
        select device.Value == DeviceKind.Cpu && index.IsDefined
            ? throw new SyntaxError(index.Get().Start, "only cuda takes a device index, as in cuda:1",
                ["end of statement"])
            : new DeviceStatement(device.Value, index.IsDefined ? index.Get().Value : null);

    private Parser<Statement> InputCommand() =>
        from source in inputSource
        from end in Options.End(source is TextInput ? AfterList : null)
        select (Statement)new InputStatement(source);

    private static Parser<Statement> Score() =>
        from kind in Choice(Keywords.ScoreKinds, "score kind")
        from end in Options.End()
        select (Statement)new ScoreStatement(kind.Value);

    private static Parser<Statement> Detect() =>
        from pattern in DetectPatternParser()
        from options in Options.Parser("detect option",
            [Option.Flag("exclude_bos"), Option.Flag("exclude_current"),
                Option.Of("error", Choice(Keywords.ErrorMeasures, "error measure"))])
        select (Statement)new DetectStatement(pattern, options.Has("exclude_bos"), options.Has("exclude_current"),
            options.Value<ErrorMeasure>("error") ?? ErrorMeasure.Mul);

    private static Parser<DetectPattern> DetectPatternParser() =>
        Word("a detection pattern (previous_token, duplicate_token, induction or a let-bound pattern)").Select(w =>
            Keywords.BuiltinPatterns.TryParse(w.Value, out var kind)
                ? (DetectPattern)new BuiltinPattern(kind)
                : new PatternName(w.Value) { Position = new(w.Start) });

    private Parser<Statement> Heads() =>
        from heads in selection
        from end in Options.End(AfterSelection)
        select (Statement)new HeadsStatement(heads);

    private Parser<Statement> Let()
    {
        var value =
            (from keyword in Keyword("input") from source in inputSource select (LetValue)new InputValue(source))
            .XOr(from keyword in Keyword("pattern") from rows in PatternRows select (LetValue)new PatternValue(rows))
            .XOr(selection.Select(s => (LetValue)new SelectionValue(s)));
        return
            from name in LetName
            from assign in Symbol("=")
            from bound in value
            from end in Options.End(
                bound is SelectionValue ? AfterSelection : bound is InputValue { Source: TextInput } ? AfterList : null)
            select bound is PatternValue && Keywords.BuiltinPatterns.TryParse(name.Value, out _)
                ? throw new SyntaxError(name.Start,
                    $"'{name.Value}' is a built-in detection pattern and cannot name another one", ["a name"])
                : (Statement)new LetStatement(name.Value, bound);
    }

    private static readonly Parser<Tok<string>> LetName = Word("a name").Select(t =>
        Keywords.LooksLikeSelector(t.Value)
            ? throw new SyntaxError(t.Start, $"'{t.Value}' reads as a layer or head selector and cannot be a name",
                ["a name"])
            : Keywords.IsReservedName(t.Value)
                ? throw new SyntaxError(t.Start, $"'{t.Value}' is a reserved word and cannot be a name", ["a name"])
                : t);

    private Parser<Statement> Ablate()
    {
        var target =
            (from keyword in Keyword("feature")
             from feature in Count("a feature index after 'feature'", Ranges.FeatureIndex)
             select (InterventionTarget)new FeatureTarget(feature.Value))
            .XOr(
                from keyword in Keyword("mlp").Or(Keyword("attn"))
                from layer in Layer($"a layer such as L0 after '{keyword}'")
                select keyword == "mlp" ? (InterventionTarget)new MlpTarget(layer.Value) : new AttnTarget(layer.Value))
            .XOr(
                from keyword in Keyword("neurons")
                from mlp in Keyword("mlp")
                from layer in Layer("a layer such as L0 after 'mlp'")
                from neurons in Neuron("a neuron such as N12").XDelimitedBy(Symbol(","))
                select (InterventionTarget)new NeuronsTarget(layer.Value, NodeList.From(neurons.Select(n => n.Value))))
            .XOr(selection.Select(s => (InterventionTarget)new HeadsTarget(s)));
        Option[] modes = [.. Keywords.AblationModes.Words.Select(w => Option.Flag(w, "ablation mode"))];
        return
            from ablated in target
            from options in Options.Parser("ablation mode", modes,
                followers: ablated is HeadsTarget ? AfterSelection : ablated is NeuronsTarget ? AfterList : null,
                extra: "'{'")
            select (Statement)new InterventionStatement(
                new Ablation(ablated, options.InGroup("ablation mode") is { } mode
                    && Keywords.AblationModes.TryParse(mode, out var m) ? m : AblationMode.Zero),
                null);
    }

    private static Parser<Statement> Logits() =>
        from options in Options.Parser("logits option", [Top])
        select (Statement)new LogitsStatement(options.Value<int>("top"));

    private static Parser<Statement> Generate() =>
        from count in Count("the number of tokens to generate", Ranges.NewTokens)
        from options in Options.Parser("generate option",
        [
            Option.Of("temperature", Number("a temperature after 'temperature'", Ranges.Temperature)),
            Option.Of("top_k", Count("a count after 'top_k'", Ranges.TopK)),
            Option.Of("top_p", Number("a probability after 'top_p'", Ranges.TopP)),
            Option.Flag("greedy"),
        ])
        select (Statement)new GenerateStatement(count.Value, options.Value<double>("temperature"),
            options.Value<int>("top_k"), options.Value<double>("top_p"), options.Has("greedy"));

    private Parser<Statement> Circuit() =>
        from kind in Choice(Keywords.CircuitKinds, "circuit kind")
        from heads in selection
        from options in Options.Parser("circuit option", [Top], followers: AfterSelection)
        select (Statement)new CircuitStatement(kind.Value, heads, options.Value<int>("top"));

    private Parser<Statement> Compose() =>
        from kind in Choice(Keywords.CompositionKinds, "composition kind")
        from earlier in selection
        from arrow in Symbol("->")
        from later in selection
        from end in Options.End(AfterSelection)
        select (Statement)new ComposeStatement(kind.Value, earlier, later);

    private static Parser<Statement> Attribute()
    {
        var target =
            from token in TokenRefParser("a token after 'to' (a string or a token id)")
            from versus in Keyword("vs")
                .Then(_ => TokenRefParser("a token after 'vs' (a string or a token id)")).XOptional()
            select new LogitTarget(token, versus.GetOrDefault());
        return
            from options in Options.Parser("attribute option", [Option.Node("to", target)])
            select (Statement)new AttributeStatement(options.Get<LogitTarget>("to"));
    }

    /// <summary>`attribute patch TARGET from SOURCE [metric M]`, read after `attribute` when `patch` follows.</summary>
    private Parser<Statement> AttributePatch() =>
        from keyword in Keyword("patch")
        from patch in Patch()
        let p = (PatchStatement)patch
        select (Statement)new AttributePatchStatement(p.Target, p.Source, p.Metric);

    private Parser<Statement> Patch() =>
        from target in Choice(Keywords.PatchTargets, "patch target")
        from keyword in Keyword("from")
        from source in inputSource
        from options in Options.Parser("patch option", [Option.Node("metric", MetricParser)],
            followers: source is TextInput ? AfterList : null)
        select (Statement)new PatchStatement(target.Value, source, options.Get<Metric>("metric") ?? new LossMetric());

    private static readonly Parser<Metric> MetricParser = Dispatch("a metric (logit_diff, loss or prob)", "metric",
        new OrderedDictionary<string, Parser<Metric>>
        {
            ["logit_diff"] =
                from correct in TokenRefParser("the correct token after 'logit_diff' (a string or a token id)")
                from incorrect in TokenRefParser("the incorrect token after the correct one (a string or a token id)")
                select (Metric)new LogitDiffMetric(correct, incorrect),
            ["loss"] = Sprache.Parse.Return<Metric>(new LossMetric()),
            ["prob"] =
                TokenRefParser("a token after 'prob' (a string or a token id)").Select(t => (Metric)new ProbMetric(t)),
        });

    private static Parser<TokenRef> TokenRefParser(string expected) =>
        String(expected).Select(t => (TokenRef)new TokenText(t.Value))
            .XOr(Count(expected, Ranges.TokenId).Select(t => (TokenRef)new TokenId(t.Value)));

    private Parser<Statement> Show()
    {
        var path = PathArgument("an output path after '>'", "the output path").Select(t => (object)t.Value);
        var output = new Option(">", path, Display: "'> PATH'");
        return
            from view in ViewParser()
            from options in Options.Parser("show option", [output],
                followers: view is PatternView ? AfterSelection : null)
            select (Statement)new ShowStatement(view, options.Get<string>(">"));
    }

    private Parser<View> ViewParser() => Dispatch("what to show (pattern, scores or tokens)", "view",
        new OrderedDictionary<string, Parser<View>>
        {
            ["pattern"] = selection.Select(s => (View)new PatternView(s)),
            ["scores"] = Choice(Keywords.ScoreKinds, "score kind").Select(k => (View)new ScoresView(k.Value))
                .XOr(Sprache.Parse.Return<View>(new ScoresView(null))),
            ["tokens"] = Sprache.Parse.Return<View>(new TokensView()),
        });

    private static Parser<Statement> Cache() =>
        from action in Choice(Keywords.CacheActions, "cache action")
        from path in PathArgument("a file path", "the cache path")
        from options in Options.Parser("cache option",
            [Option.Of("filter", PathArgument("a hook name filter after 'filter'", "the filter")),
                Option.Of("stop_at_layer", Count("a layer after 'stop_at_layer'", Ranges.StopAtLayer))])
        select (Statement)new CacheStatement(action.Value, path.Value, options.Get<string>("filter"),
            options.Value<int>("stop_at_layer"));

    private static Parser<Statement> PrintCommand()
    {
        Parser<PrintSubject> Subject(string name) =>
            ActName.IsFullName(name)
                ? Sprache.Parse.Return<PrintSubject>(new PrintHook(new FullHookName(name)))
                : (from layer in Count("a layer index", Ranges.LayerIndex)
                   from layerType in Word("a layer type such as ln1").XOptional()
                   select (PrintSubject)new PrintHook(
                       new HookShorthand(name, layer.Value, layerType.IsDefined ? layerType.Get().Value : null)))
                .XOr(Sprache.Parse.Return<PrintSubject>(new PrintName(name)));
        return
            from name in DottedName("a result name, a let-bound name or a hook name")
            from subject in Subject(name.Value)
            from end in Options.End()
            select (Statement)new PrintStatement(subject);
    }
}
