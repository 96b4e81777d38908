using System.Text.RegularExpressions;
using static Lens.Dsl.Printer;

namespace Lens.Dsl;

// Each statement record is one command: its fields, the range rules it checks at construction (Ranges.cs),
// and its canonical text (Text), which Printer.Print gives and the grammar reads back.

/// <summary>`model demo-attn-only-2l`, `model org/name`, `model ./models/x` or `model "/path with spaces"`.</summary>
public sealed partial record ModelStatement(string Reference) : Statement
{
    private Valid InRange { get; } = Valid.NotEmpty(Reference, "the model reference");

    /// <summary>
    /// Derived from the text: an org/name pair is a hub id, a single word (letters, digits, _ . -) a name,
    /// anything else (leading ./ or /, several slashes, spaces) a path.
    /// </summary>
    public ModelReferenceKind Kind =>
        ReferenceRegex().Match(Reference) is not { Success: true } match ? ModelReferenceKind.Path
        : match.Groups["repo"].Success ? ModelReferenceKind.HubId
        : ModelReferenceKind.Name;

    internal override string Canonical(string indent) => "model " + Path(Reference);

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(?<repo>/[A-Za-z0-9_][A-Za-z0-9_.\-]*)?$")]
    private static partial Regex ReferenceRegex();
}

/// <summary>`seed 0`.</summary>
public sealed record SeedStatement(long Seed) : Statement
{
    private Valid InRange { get; } = Ranges.Seed.Of(Seed);

    internal override string Canonical(string indent) => "seed " + Int(Seed);
}

/// <summary>`device cpu`, `device cuda`, `device cuda:1`.</summary>
public sealed record DeviceStatement(DeviceKind Device, int? Index) : Statement
{
    private Valid InRange { get; } =
        Ranges.DeviceIndex.Of(Index)
            & Valid.Require(Device == DeviceKind.Cuda || Index is null, "only cuda takes a device index, as in cuda:1");

    internal override string Canonical(string indent) =>
        "device " + Keywords.Devices.Text(Device) + (Index is { } i ? ":" + Int(i) : "");
}

/// <summary>
/// `use attn_result`: turns a TransformerLens config flag on (use_attn_result) for the rest of the experiment,
/// so the hook points it enables fire.
/// </summary>
public sealed record UseStatement(ModelFlag Flag) : Statement
{
    internal override string Canonical(string indent) => "use " + Keywords.ModelFlags.Text(Flag);
}

/// <summary>`input ...`: sets the input the following commands run on.</summary>
public sealed record InputStatement(InputSource Source) : Statement
{
    internal override string Canonical(string indent) => "input " + Print(Source);
}

/// <summary>`score induction`: stripe scores for every head.</summary>
public sealed record ScoreStatement(ScoreKind Kind) : Statement
{
    internal override string Canonical(string indent) => "score " + Keywords.ScoreKinds.Text(Kind);
}

/// <summary>`detect induction exclude_bos error abs`: TransformerLens detect_head.</summary>
public sealed record DetectStatement(DetectPattern Pattern, bool ExcludeBos, bool ExcludeCurrentToken,
    ErrorMeasure ErrorMeasure) : Statement
{
    internal override string Canonical(string indent) =>
        "detect " + Print(Pattern) + (ExcludeBos ? " exclude_bos" : "")
            + (ExcludeCurrentToken ? " exclude_current" : "")
        + (ErrorMeasure == ErrorMeasure.Mul ? "" : " error " + Keywords.ErrorMeasures.Text(ErrorMeasure));
}

/// <summary>`heads where induction > 0.5`: shows which heads a selection picks.</summary>
public sealed record HeadsStatement(Selection Selection) : Statement
{
    internal override string Canonical(string indent) => "heads " + Print(Selection);
}

/// <summary>
/// `let ind = heads where induction > 0.5`. Binds a name from here to the end of the enclosing block
/// (or of the script, at top level); later lets may rebind it.
/// </summary>
public sealed record LetStatement(string Name, LetValue Value) : Statement
{
    private Valid Bindable { get; } =
        Valid.Require(Keywords.IsValidName(Name),
            $"'{Name}' is not a valid name (an identifier, not reserved, not like L1)")
        & Valid.Require(Value is not PatternValue || !Keywords.BuiltinPatterns.TryParse(Name, out _),
            $"'{Name}' is a built-in detection pattern and cannot name another one");

    internal override string Canonical(string indent) => "let " + Name + " = " + Print(Value);
}

/// <summary>
/// `ablate L1H4 mean { ... }`: an intervention. With a <see cref="Body"/> it applies to the statements of the
/// block only; without one (<see cref="Body"/> is null) it applies to the rest of the script (or enclosing block).
/// </summary>
public sealed record InterventionStatement(Intervention Intervention, NodeList<Statement>? Body) : Statement
{
    public bool IsScoped => Body is not null;

    internal override string Canonical(string indent) => Print(Intervention) + Block(Body, indent);
}

/// <summary>`run`: a forward pass on the current input.</summary>
public sealed record RunStatement : Statement
{
    internal override string Canonical(string indent) => "run";
}

/// <summary>`loss`.</summary>
public sealed record LossStatement : Statement
{
    internal override string Canonical(string indent) => "loss";
}

/// <summary>`logits top 5` (or `logits`, all of them).</summary>
public sealed record LogitsStatement(int? Top) : Statement
{
    private Valid InRange { get; } = Ranges.Top.Of(Top);

    internal override string Canonical(string indent) => "logits" + TopOption(Top);
}

/// <summary>`predict`: the predicted next token at each position.</summary>
public sealed record PredictStatement : Statement
{
    internal override string Canonical(string indent) => "predict";
}

/// <summary>`generate 20 temperature 0.8 top_k 40 top_p 0.9 greedy`.</summary>
public sealed record GenerateStatement(int MaxNewTokens, double? Temperature, int? TopK, double? TopP, bool Greedy)
    : Statement
{
    private Valid InRange { get; } =
        Ranges.NewTokens.Of(MaxNewTokens) & Ranges.Temperature.Of(Temperature) & Ranges.TopK.Of(TopK)
            & Ranges.TopP.Of(TopP);

    internal override string Canonical(string indent) =>
        "generate " + Int(MaxNewTokens) + (Temperature is { } t ? " temperature " + Number(t) : "")
            + (TopK is { } k ? " top_k " + Int(k) : "")
        + (TopP is { } p ? " top_p " + Number(p) : "") + (Greedy ? " greedy" : "");
}

/// <summary>`circuit full_ov L1H6 top 10`.</summary>
public sealed record CircuitStatement(CircuitKind Kind, Selection Heads, int? Top) : Statement
{
    private Valid InRange { get; } = Ranges.Top.Of(Top);

    internal override string Canonical(string indent) =>
        "circuit " + Keywords.CircuitKinds.Text(Kind) + " " + Print(Heads) + TopOption(Top);
}

/// <summary>`compose k L0H* -> L1H*`: composition scores from the earlier heads into an input of the later
/// ones.</summary>
public sealed record ComposeStatement(CompositionKind Kind, Selection From, Selection To) : Statement
{
    internal override string Canonical(string indent) =>
        "compose " + Keywords.CompositionKinds.Text(Kind) + " " + Print(From) + " -> " + Print(To);
}

/// <summary>`attribute` or `attribute to " Mary" vs " John"`: direct logit attribution per head and layer.</summary>
public sealed record AttributeStatement(LogitTarget? Target) : Statement
{
    internal override string Canonical(string indent) =>
        "attribute" + (Target is { } target ? " " + Print(target) : "");
}

/// <summary>`logit_lens`.</summary>
public sealed record LogitLensStatement : Statement
{
    internal override string Canonical(string indent) => "logit_lens";
}

/// <summary>`patch resid_pre from "clean prompt" metric logit_diff " Mary" " John"` (metric loss when not
/// given).</summary>
public sealed record PatchStatement(PatchTarget Target, InputSource Source, Metric Metric) : Statement
{
    internal override string Canonical(string indent) =>
        "patch " + Keywords.PatchTargets.Text(Target) + " from " + Print(Source) + " metric " + Print(Metric);
}

/// <summary>
/// `attribute patch heads from "clean prompt" metric logit_diff " Mary" " John"`: attribution patching, the
/// linear estimate of what `patch` measures, from one clean forward and one corrupted forward and backward.
/// </summary>
public sealed record AttributePatchStatement(PatchTarget Target, InputSource Source, Metric Metric) : Statement
{
    internal override string Canonical(string indent) =>
        "attribute patch " + Keywords.PatchTargets.Text(Target) + " from " + Print(Source) + " metric " + Print(Metric);
}

/// <summary>`show pattern L1 > out/l1.html`; without `> PATH` the view goes to the console.</summary>
public sealed record ShowStatement(View View, string? OutputPath) : Statement
{
    private Valid InRange { get; } = Valid.Require(OutputPath is not "", "the output path must not be empty");

    internal override string Canonical(string indent) =>
        "show " + Print(View) + (OutputPath is { } path ? " > " + Path(path) : "");
}

/// <summary>`cache save|load PATH [filter G] [stop_at_layer K]`: K runs the embedding and blocks 0 … K−1 only
/// (TransformerLens's stop_at_layer).</summary>
public sealed record CacheStatement(CacheAction Action, string Path, string? Filter, int? StopAtLayer = null)
    : Statement
{
    private Valid InRange { get; } = Ranges.StopAtLayer.Of(StopAtLayer) & Valid.NotEmpty(Path, "the cache path")
        & Valid.Require(Filter is not "", "the filter must not be empty");

    internal override string Canonical(string indent) =>
        "cache " + Keywords.CacheActions.Text(Action) + " " + Printer.Path(Path)
            + (Filter is { } filter ? " filter " + Quote(filter) : "")
        + (StopAtLayer is int stop ? " stop_at_layer " + Int(stop) : "");
}

/// <summary>`print induction`, `print blocks.1.attn.hook_pattern`, `print pattern 1`.</summary>
public sealed record PrintStatement(PrintSubject Subject) : Statement
{
    internal override string Canonical(string indent) => "print " + Print(Subject);
}

/// <summary>
/// `expect induction L1H1 > 0.8`, `expect loss == 2.5 within 0.1`: a claim about a value of the most recent
/// result of its kind in scope. A failing expectation does not stop the run; the run reports it at the end.
/// </summary>
public sealed record ExpectStatement(ExpectTarget Target, ExpectOperator Operator, double Threshold, double? Tolerance)
    : Statement
{
    private Valid InRange { get; } =
        Ranges.Tolerance.Of(Tolerance) & Valid.Require(Operator != ExpectOperator.Equal || Tolerance is not null,
        "'==' needs a tolerance: write `== VALUE within TOLERANCE`, as in `expect loss == 2.5 within 0.01`");

    internal override string Canonical(string indent) =>
        "expect " + Print(Target) + " " + Keywords.ExpectOperators.Text(Operator) + " " + Number(Threshold)
        + (Tolerance is { } tolerance ? " within " + Number(tolerance) : "");
}

/// <summary>
/// `expect generated contains " the"`, `expect generated row 1 equals "..."`: a claim about text a statement
/// produced (generated text), checked like <see cref="ExpectStatement"/>.
/// </summary>
public sealed record ExpectTextStatement(ExpectTarget Target, TextComparison Operator, string Text) : Statement
{
    internal override string Canonical(string indent) =>
        "expect " + Print(Target) + " " + Keywords.TextComparisons.Text(Operator) + " " + Quote(Text);
}

/// <summary>
/// `sae load PATH [at HOOK] [error_term]`: loads a sparse autoencoder (a SAELens folder or Gemma Scope's
/// params.npz layout) and splices it into its hook point for the rest of the enclosing block or experiment;
/// with `error_term` the model's output stays exact while the features are exposed.
/// </summary>
public sealed record SaeLoadStatement(string Path, string? Hook, bool ErrorTerm) : Statement
{
    private Valid InRange { get; } = Valid.NotEmpty(Path, "the SAE path")
        & Valid.Require(Hook is null || Tokens.DottedNameRegex().IsMatch(Hook),
            $"'{Hook}' is not a hook name (names joined by dots)");

    internal override string Canonical(string indent) =>
        "sae load " + Printer.Path(Path) + (Hook is { } hook ? " at " + hook : "") + (ErrorTerm ? " error_term" : "");
}

/// <summary>`sae metrics`: SAELens's run_evals metrics of the most recent SAE on the current input.</summary>
public sealed record SaeMetricsStatement : Statement
{
    internal override string Canonical(string indent) => "sae metrics";
}

/// <summary>`features top 5 [pos 7]`: the most active features of the most recent SAE at each position (or
/// one).</summary>
public sealed record FeaturesTopStatement(int Top, int? Position) : Statement
{
    private Valid InRange { get; } = Ranges.Top.Of(Top) & Ranges.Position.Of(Position);

    internal override string Canonical(string indent) =>
        "features top " + Int(Top) + (Position is { } pos ? " pos " + Int(pos) : "");
}

/// <summary>`features logits 12 [top 10]`: the tokens feature 12's decoder direction promotes and suppresses most
/// (direct logit attribution).</summary>
public sealed record FeatureLogitsStatement(int Feature, int? Top) : Statement
{
    private Valid InRange { get; } = Ranges.FeatureIndex.Of(Feature) & Ranges.Top.Of(Top);

    internal override string Canonical(string indent) => "features logits " + Int(Feature) + TopOption(Top);
}

/// <summary>
/// `steer feature 12 by 3.5` (adds to the feature) or `steer feature 12 to 10` (sets it) on the most recent SAE's
/// hook_sae_acts_post, at every position, for the rest of the enclosing block or experiment.
/// </summary>
public sealed record SteerStatement(int Feature, double Value, bool Set) : Statement
{
    private Valid InRange { get; } = Ranges.FeatureIndex.Of(Feature);

    internal override string Canonical(string indent) =>
        "steer feature " + Int(Feature) + (Set ? " to " : " by ") + Number(Value);
}
