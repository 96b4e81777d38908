/// Experiments as values in F#: each function is a step that appends the stage the experiment
/// language's statement of that name parses to, so F#'s own `>>` chains them and `build` gives the
/// pipeline:
///
///     open Lens.Dsl
///     open Lens.FSharp.Experiment
///     let study = repeatRandom 50 2 8 >> ablate (heads "L1H*") AblationMode.Mean >> score ScoreKind.Induction
///     build study = Pipeline.Parse "input repeat random 50 x2 batch 8\nablate L1H* mean\nscore induction"   // true
///
/// `execute` checks and runs a study on a fresh environment and returns the final state.
namespace Lens.FSharp

open Lens.Dsl
open Lens.Dsl.Runtime

module Experiment =
    /// A step of a study: appends stages to a pipeline. Steps compose with `>>`.
    type Step = Pipeline -> Pipeline

    let private stage (next: Pipeline) : Step = fun pipeline -> pipeline.Then next

    /// The pipeline a study builds.
    let build (study: Step) = study Pipeline.Empty

    // ---- setup --------------------------------------------------------------------------------
    let model (reference: string) = stage (Pipeline.Model reference)
    let seed (n: int64) = stage (Pipeline.Seed n)
    let device (kind: DeviceKind) = stage (Pipeline.Device kind)
    /// `input "text"`.
    let input (text: string) = stage (Pipeline.Input [| text |])
    /// `input "a", "b"`: one batch row per text.
    let inputs (texts: string list) = stage (Pipeline.Input(Array.ofList texts))
    /// `input tokens [..]`.
    let tokens (ids: int list) = stage (Pipeline.InputTokens(Array.ofList ids))
    /// `input repeat random LENGTH xREPEATS batch BATCH`.
    let repeatRandom (length: int) (repeats: int) (batch: int) = stage (Pipeline.RepeatRandom(length, repeats, batch))
    /// A selection as the language writes it: `heads "L1H*"`, `heads "where induction > 0.5"`.
    let heads (selection: string) = Selections.Parse selection
    /// `let NAME = heads SELECTION`.
    let letHeads (name: string) (selection: Selection) = stage (Pipeline.Let(name, SelectionValue selection))

    // ---- heads --------------------------------------------------------------------------------
    let score (kind: ScoreKind) = stage (Pipeline.Score kind)
    let detect (pattern: BuiltinPatternKind) = stage (Pipeline.Detect pattern)
    /// `heads SELECTION`: which heads a selection picks.
    let listHeads (selection: Selection) = stage (Pipeline.Heads selection)

    // ---- interventions ------------------------------------------------------------------------
    /// `ablate SELECTION MODE` for the rest of the pipeline.
    let ablate (selection: Selection) (mode: AblationMode) = stage (Pipeline.Ablate(HeadsTarget selection, mode))
    /// `ablate SELECTION MODE { body }`: the ablation applies to the body only.
    let ablateIn (selection: Selection) (mode: AblationMode) (body: Step) =
        stage (Pipeline.Ablate(HeadsTarget selection, mode, build body))
    /// `ablate mlp LAYER MODE`.
    let ablateMlp (layer: int) (mode: AblationMode) = stage (Pipeline.Ablate(MlpTarget layer, mode))

    // ---- running ------------------------------------------------------------------------------
    let forward = stage (Pipeline.Run())
    let loss = stage (Pipeline.Loss())
    let logitsTop (k: int) = stage (Pipeline.Logits(System.Nullable k))
    let predict = stage (Pipeline.Predict())
    let generate (n: int) = stage (Pipeline.Generate n)
    let circuit (kind: CircuitKind) (selection: Selection) = stage (Pipeline.Circuit(kind, selection))
    let compose (kind: CompositionKind) (from: Selection) (into: Selection) = stage (Pipeline.Compose(kind, from, into))
    /// `attribute to TOKEN vs TOKEN`.
    let attribute (token: string) (versus: string) = stage (Pipeline.Attribute(token, versus))
    let logitLens = stage (Pipeline.LogitLens())
    /// `patch TARGET from "text" metric logit_diff A B`.
    let patchLogitDiff (target: PatchTarget) (from: string) (correct: string) (incorrect: string) =
        stage (Pipeline.Patch(target, TextInput(NodeList.Of from),
                              LogitDiffMetric(TokenText correct, TokenText incorrect)))
    let showPattern (selection: Selection) = stage (Pipeline.Show(PatternView selection))

    // ---- running a pipeline -------------------------------------------------------------------
    /// Checks then runs a study in an environment (which keeps its models loaded until disposed).
    let executeIn (environment: ExperimentEnvironment) (study: Step) =
        Startup.ensure (); (build study).Execute environment

    /// Checks then runs a study in a fresh environment; results print to the console as they come.
    let execute (study: Step) =
        Startup.ensure ()
        let environment = new ExperimentEnvironment(OnResult = fun r -> printfn "%s" (r.ToText()))
        (build study).Execute environment

    /// The results of a command (`"score"`, `"loss"`, ...), in order.
    let resultsOf (command: string) (state: ExperimentState) =
        state.Results |> Seq.filter (fun r -> r.Command = command) |> List.ofSeq

    /// The layer × head table of a result.
    let layerHead (result: ExperimentResult) =
        match result.Value with
        | :? LayerHeadValue as v -> Array2D.init v.Layers v.Heads (fun l h -> v.[l, h])
        | other -> failwithf "`%s` gave a %s, not a layer × head table" result.Text other.Kind

    /// The number of a scalar result (a loss).
    let scalar (result: ExperimentResult) =
        match result.Value with
        | :? ScalarValue as v -> v.Value
        | other -> failwithf "`%s` gave a %s, not a number" result.Text other.Kind

    /// The run's JSON record (docs/run-result.schema.json).
    let toJson (state: ExperimentState) = RunJson.Write(state)
