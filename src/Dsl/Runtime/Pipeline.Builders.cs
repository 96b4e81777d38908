namespace Lens.Dsl.Runtime;

/// <summary>
/// One builder per command: each returns a one-stage pipeline holding the same statement the parser
/// would make from the command's text, so <c>Pipeline.Ablate(...).Then(Pipeline.Score(...))</c> equals
/// <c>Pipeline.Parse("ablate ...\nscore ...")</c>. Selections can be given as text (`"L1H*"`) or as nodes.
/// </summary>
public sealed partial record Pipeline
{
    public static Pipeline Model(string reference) => Of(new ModelStatement(reference));

    public static Pipeline Seed(long seed) => Of(new SeedStatement(seed));

    public static Pipeline Device(DeviceKind device, int? index = null) => Of(new DeviceStatement(device, index));

    public static Pipeline Input(InputSource source) => Of(new InputStatement(source));

    /// <summary>`input "a", "b"`.</summary>
    public static Pipeline Input(params string[] texts) => Input(new TextInput([.. texts]));

    /// <summary>`input tokens [..]`, one row.</summary>
    public static Pipeline InputTokens(params int[] ids) => Input(new TokenInput([NodeList.From(ids)]));

    /// <summary>`input tokens [[..], [..]]`.</summary>
    public static Pipeline InputTokens(IEnumerable<int[]> rows) =>
        Input(new TokenInput([.. rows.Select(NodeList.From)]));

    public static Pipeline InputFile(string path) => Input(new FileInput(path));

    /// <summary>`input repeat random LENGTH xREPEATS batch BATCH`.</summary>
    public static Pipeline RepeatRandom(int length, int repeats = 2, int batch = 1, long? seed = null) =>
        Input(new RepeatRandomInput(length, repeats, batch, seed));

    public static Pipeline Score(ScoreKind kind) => Of(new ScoreStatement(kind));

    public static Pipeline Detect(BuiltinPatternKind pattern, bool excludeBos = false, bool excludeCurrent = false,
        ErrorMeasure error = ErrorMeasure.Mul) =>
        Of(new DetectStatement(new BuiltinPattern(pattern), excludeBos, excludeCurrent, error));

    /// <summary>`detect NAME ...` with a let-bound pattern.</summary>
    public static Pipeline Detect(string patternName, bool excludeBos = false, bool excludeCurrent = false,
        ErrorMeasure error = ErrorMeasure.Mul) =>
        Of(new DetectStatement(new PatternName(patternName), excludeBos, excludeCurrent, error));

    public static Pipeline Heads(Selection selection) => Of(new HeadsStatement(selection));

    public static Pipeline Heads(string selection) => Heads(Selections.Parse(selection));

    public static Pipeline Let(string name, LetValue value) => Of(new LetStatement(name, value));

    public static Pipeline LetHeads(string name, string selection) =>
        Let(name, new SelectionValue(Selections.Parse(selection)));

    public static Pipeline LetInput(string name, InputSource source) => Let(name, new InputValue(source));

    public static Pipeline LetPattern(string name, IEnumerable<double[]> rows) =>
        Let(name, new PatternValue([.. rows.Select(NodeList.From)]));

    /// <summary>`ablate TARGET [mode]`, for the rest of the pipeline, or `ablate TARGET [mode] { body }` for the body
    /// only.</summary>
    public static Pipeline Ablate(InterventionTarget target, AblationMode mode = AblationMode.Zero,
        Pipeline? body = null) =>
        Of(new InterventionStatement(new Ablation(target, mode), body is null ? null : body.ToScript().Statements));

    /// <summary>Ablates heads or whole layers given as selection text (`"L1H*"`, `"L0"`,
    /// `"where induction > 0.5"`).</summary>
    public static Pipeline Ablate(string selection, AblationMode mode = AblationMode.Zero, Pipeline? body = null) =>
        Ablate(new HeadsTarget(Selections.Parse(selection)), mode, body);

    public static Pipeline Run() => Of(new RunStatement());

    public static Pipeline Loss() => Of(new LossStatement());

    public static Pipeline Logits(int? top = null) => Of(new LogitsStatement(top));

    public static Pipeline Predict() => Of(new PredictStatement());

    public static Pipeline Generate(int maxNewTokens, double? temperature = null, int? topK = null, double? topP = null,
        bool greedy = false) =>
        Of(new GenerateStatement(maxNewTokens, temperature, topK, topP, greedy));

    public static Pipeline Circuit(CircuitKind kind, Selection heads, int? top = null) =>
        Of(new CircuitStatement(kind, heads, top));

    public static Pipeline Circuit(CircuitKind kind, string heads, int? top = null) =>
        Circuit(kind, Selections.Parse(heads), top);

    public static Pipeline Compose(CompositionKind kind, Selection from, Selection to) =>
        Of(new ComposeStatement(kind, from, to));

    public static Pipeline Compose(CompositionKind kind, string from, string to) =>
        Compose(kind, Selections.Parse(from), Selections.Parse(to));

    public static Pipeline Attribute(LogitTarget? target = null) => Of(new AttributeStatement(target));

    /// <summary>`attribute to TOKEN [vs TOKEN]` with tokens as text.</summary>
    public static Pipeline Attribute(string token, string? versus = null) =>
        Attribute(new LogitTarget(new TokenText(token), versus is null ? null : new TokenText(versus)));

    public static Pipeline LogitLens() => Of(new LogitLensStatement());

    public static Pipeline Patch(PatchTarget target, InputSource from, Metric? metric = null) =>
        Of(new PatchStatement(target, from, metric ?? new LossMetric()));

    public static Pipeline Show(View view, string? path = null) => Of(new ShowStatement(view, path));

    public static Pipeline ShowPattern(string heads, string? path = null) =>
        Show(new PatternView(Selections.Parse(heads)), path);

    public static Pipeline ShowScores(ScoreKind? kind = null, string? path = null) => Show(new ScoresView(kind), path);

    public static Pipeline ShowTokens(string? path = null) => Show(new TokensView(), path);

    public static Pipeline CacheSave(string path, string? filter = null) =>
        Of(new CacheStatement(CacheAction.Save, path, filter));

    public static Pipeline CacheLoad(string path, string? filter = null) =>
        Of(new CacheStatement(CacheAction.Load, path, filter));

    public static Pipeline Print(PrintSubject subject) => Of(new PrintStatement(subject));

    /// <summary>`print NAME` (a let-bound name or a score kind).</summary>
    public static Pipeline Print(string name) => Print(new PrintName(name));

    /// <summary>`print HOOK` with a full hook name.</summary>
    public static Pipeline PrintHook(string fullName) => Print(new PrintHook(new FullHookName(fullName)));
}
