using System.Text.RegularExpressions;

namespace Lens.Dsl;

/// <summary>`model demo-attn-only-2l`, `model org/name`, `model ./models/x` or `model "/path with spaces"`.</summary>
public sealed partial record ModelStatement(string Reference) : Statement
{
    /// <summary>
    /// Derived from the text: an org/name pair is a hub id, a single word (letters, digits, _ . -) a name,
    /// anything else (leading ./ or /, several slashes, spaces) a path.
    /// </summary>
    public ModelReferenceKind Kind =>
        HubIdRegex().IsMatch(Reference) ? ModelReferenceKind.HubId
        : NameRegex().IsMatch(Reference) ? ModelReferenceKind.Name
        : ModelReferenceKind.Path;

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.\-]*/[A-Za-z0-9_][A-Za-z0-9_.\-]*$")]
    private static partial Regex HubIdRegex();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")]
    private static partial Regex NameRegex();
}

/// <summary>`seed 0`.</summary>
public sealed record SeedStatement(long Seed) : Statement;

/// <summary>`device cpu`, `device cuda`, `device cuda:1`.</summary>
public sealed record DeviceStatement(DeviceKind Device, int? Index) : Statement;

/// <summary>
/// `use attn_result`: turns a TransformerLens config flag on (use_attn_result) for the rest of the experiment,
/// so the hook points it enables fire.
/// </summary>
public sealed record UseStatement(ModelFlag Flag) : Statement;

/// <summary>`input ...`: sets the input the following commands run on.</summary>
public sealed record InputStatement(InputSource Source) : Statement;

/// <summary>`score induction`: stripe scores for every head.</summary>
public sealed record ScoreStatement(ScoreKind Kind) : Statement;

/// <summary>`detect induction exclude_bos error abs`: TransformerLens detect_head.</summary>
public sealed record DetectStatement(DetectPattern Pattern, bool ExcludeBos, bool ExcludeCurrentToken, ErrorMeasure ErrorMeasure) : Statement;

/// <summary>`heads where induction > 0.5`: shows which heads a selection picks.</summary>
public sealed record HeadsStatement(Selection Selection) : Statement;

/// <summary>
/// `let ind = heads where induction > 0.5`. Binds a name from here to the end of the enclosing block
/// (or of the script, at top level); later lets may rebind it.
/// </summary>
public sealed record LetStatement(string Name, LetValue Value) : Statement;

/// <summary>
/// `ablate L1H4 mean { ... }`: an intervention. With a <see cref="Body"/> it applies to the statements of the
/// block only; without one (<see cref="Body"/> is null) it applies to the rest of the script (or enclosing block).
/// </summary>
public sealed record InterventionStatement(Intervention Intervention, NodeList<Statement>? Body) : Statement
{
    public bool IsScoped => Body is not null;
}

/// <summary>`run`: a forward pass on the current input.</summary>
public sealed record RunStatement : Statement;

/// <summary>`loss`.</summary>
public sealed record LossStatement : Statement;

/// <summary>`logits top 5` (or `logits`, all of them).</summary>
public sealed record LogitsStatement(int? Top) : Statement;

/// <summary>`predict`: the predicted next token at each position.</summary>
public sealed record PredictStatement : Statement;

/// <summary>`generate 20 temperature 0.8 top_k 40 top_p 0.9 greedy`.</summary>
public sealed record GenerateStatement(int MaxNewTokens, double? Temperature, int? TopK, double? TopP, bool Greedy) : Statement;

/// <summary>`circuit full_ov L1H6 top 10`.</summary>
public sealed record CircuitStatement(CircuitKind Kind, Selection Heads, int? Top) : Statement;

/// <summary>`compose k L0H* -> L1H*`: composition scores from the earlier heads into an input of the later ones.</summary>
public sealed record ComposeStatement(CompositionKind Kind, Selection From, Selection To) : Statement;

/// <summary>`attribute` or `attribute to " Mary" vs " John"`: direct logit attribution per head and layer.</summary>
public sealed record AttributeStatement(LogitTarget? Target) : Statement;

/// <summary>`logit_lens`.</summary>
public sealed record LogitLensStatement : Statement;

/// <summary>`patch resid_pre from "clean prompt" metric logit_diff " Mary" " John"` (metric loss when not given).</summary>
public sealed record PatchStatement(PatchTarget Target, InputSource Source, Metric Metric) : Statement;

/// <summary>
/// `attribute patch heads from "clean prompt" metric logit_diff " Mary" " John"`: attribution patching, the
/// linear estimate of what `patch` measures, from one clean forward and one corrupted forward and backward.
/// </summary>
public sealed record AttributePatchStatement(PatchTarget Target, InputSource Source, Metric Metric) : Statement;

/// <summary>`show pattern L1 > out/l1.html`; without `> PATH` the view goes to the console.</summary>
public sealed record ShowStatement(View View, string? OutputPath) : Statement;

/// <summary>`cache save out/run.safetensors filter "blocks.*.attn.hook_pattern"`.</summary>
/// <summary>`cache save|load PATH [filter G] [stop_at_layer K]`: K runs the embedding and blocks 0 … K−1 only (TransformerLens's stop_at_layer).</summary>
public sealed record CacheStatement(CacheAction Action, string Path, string? Filter, int? StopAtLayer = null) : Statement;

/// <summary>`print induction`, `print blocks.1.attn.hook_pattern`, `print pattern 1`.</summary>
public sealed record PrintStatement(PrintSubject Subject) : Statement;

/// <summary>
/// `expect induction L1H1 > 0.8`, `expect loss == 2.5 within 0.1`: a claim about a value of the most recent
/// result of its kind in scope. A failing expectation does not stop the run; the run reports it at the end.
/// </summary>
public sealed record ExpectStatement(ExpectTarget Target, ExpectOperator Operator, double Threshold, double? Tolerance) : Statement;

/// <summary>
/// `expect generated contains " the"`, `expect generated row 1 equals "..."`: a claim about text a statement
/// produced (generated text), checked like <see cref="ExpectStatement"/>.
/// </summary>
public sealed record ExpectTextStatement(ExpectTarget Target, TextComparison Operator, string Text) : Statement;

/// <summary>
/// `sae load PATH [at HOOK] [error_term]`: loads a sparse autoencoder (a SAELens folder or Gemma Scope's
/// params.npz layout) and splices it into its hook point for the rest of the enclosing block or experiment;
/// with `error_term` the model's output stays exact while the features are exposed.
/// </summary>
public sealed record SaeLoadStatement(string Path, string? Hook, bool ErrorTerm) : Statement;

/// <summary>`sae metrics`: SAELens's run_evals metrics of the most recent SAE on the current input.</summary>
public sealed record SaeMetricsStatement : Statement;

/// <summary>`features top 5 [pos 7]`: the most active features of the most recent SAE at each position (or one).</summary>
public sealed record FeaturesTopStatement(int Top, int? Position) : Statement;

/// <summary>`features logits 12 [top 10]`: the tokens feature 12's decoder direction promotes and suppresses most (direct logit attribution).</summary>
public sealed record FeatureLogitsStatement(int Feature, int? Top) : Statement;

/// <summary>
/// `steer feature 12 by 3.5` (adds to the feature) or `steer feature 12 to 10` (sets it) on the most recent SAE's
/// hook_sae_acts_post, at every position, for the rest of the enclosing block or experiment.
/// </summary>
public sealed record SteerStatement(int Feature, double Value, bool Set) : Statement;
