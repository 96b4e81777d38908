/// The experiment runtime: pipelines from text and from code, immutable states, the semantic checks and
/// their messages, and that every command gives exactly the analysis library's numbers.
module Lens.Tests.DslRuntimeTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Dsl
open Lens.Dsl.Runtime
open Lens.Tests.TestSupport

type LibAblation = Lens.Analysis.Ablation

/// A small model with MLPs and no tokenizer (tests/fixtures/dsl-runtime/tiny-mlp): 2 layers, 2 heads, d_vocab 100,
/// n_ctx 32.
let tinyDir = fixture [ "dsl-runtime"; "tiny-mlp" ]
let tinyModel = "model " + tinyDir + "\n"

let environment (text: string) =
    new ExperimentEnvironment(FileName = "test.lens", SourceText = text, ReadDirectory = fixture [ "dsl-runtime" ])

/// Checks and runs experiment text; the environment (with its models) is disposed afterwards.
let run (text: string) =
    use env = environment text
    Pipeline.Parse(text, "test.lens").Execute env

let result (command: string) (state: ExperimentState) = state.Results |> Seq.find (fun r -> r.Command = command)

let results (command: string) (state: ExperimentState) =
    state.Results |> Seq.filter (fun r -> r.Command = command) |> List.ofSeq

let grid (r: ExperimentResult) =
    match r.Value with
    | :? LayerHeadValue as v -> v.Values
    | other -> failtestf "%s gave %s, not a layer × head table" r.Text other.Kind

let scalarOf (r: ExperimentResult) =
    match r.Value with
    | :? ScalarValue as v -> v.Value
    | other -> failtestf "%s gave %s, not a scalar" r.Text other.Kind

let floats (t: torch.Tensor) = use c = t.to_type(torch.float32).cpu().contiguous() in c.data<float32>().ToArray()

/// float32 library values as the runtime reports them.
let asReported (t: torch.Tensor) = floats t |> Array.map Numbers.FromFloat

let flatGrid (g: float[][]) = Array.concat g

/// The errors the checks find in experiment text (no run).
let checkErrors (text: string) =
    use env = environment text
    Pipeline.Parse(text, "test.lens").Check(ExperimentState.Start env) |> List.ofSeq

/// The exception of type 'T that f throws (failing the test when it throws none).
let catch<'T when 'T :> exn> (f: unit -> unit) : 'T =
    try
        f ()
        failtestf "expected %s" typeof<'T>.Name
    with :? 'T as e -> e

let errorText (text: string) = checkErrors text |> List.map string |> String.concat "\n"

// ---------------------------------------------------------------------------------------------

let pipelineTests =
    testList "pipelines" [
        testCase "text and code build equal pipelines, command by command" <| fun () ->
            let cases: (string * Pipeline) list =
                [ "model demo-attn-only-2l", (Pipeline.Model "demo-attn-only-2l")
                  "seed 7", (Pipeline.Seed 7L)
                  "device cpu", (Pipeline.Device DeviceKind.Cpu)
                  "input \"When Mary and John\", \"went to\"", (Pipeline.Input("When Mary and John", "went to"))
                  "input tokens [1, 2, 3]", (Pipeline.InputTokens(1, 2, 3))
                  "input tokens [[1, 2], [3, 4]]", (Pipeline.InputTokens [ [| 1; 2 |]; [| 3; 4 |] ])
                  "input file prompts.txt", (Pipeline.InputFile "prompts.txt")
                  "input repeat random 50 x2 batch 8", (Pipeline.RepeatRandom(50, 2, 8))
                  "input repeat random 20", (Pipeline.RepeatRandom 20)
                  "score prev_token", (Pipeline.Score ScoreKind.PrevToken)
                  "detect induction exclude_bos error abs",
                      (Pipeline.Detect(BuiltinPatternKind.Induction, excludeBos = true, error = ErrorMeasure.Abs))
                  "heads L1H*, L0H2 except L1H3", (Pipeline.Heads "L1H*, L0H2 except L1H3")
                  "let ind = heads where induction > 0.5 and prev_token <= 0.1",
                      (Pipeline.LetHeads("ind", "where induction > 0.5 and prev_token <= 0.1"))
                  "ablate L1H* mean", (Pipeline.Ablate("L1H*", AblationMode.Mean))
                  "ablate mlp L0 resample", (Pipeline.Ablate(MlpTarget 0, AblationMode.Resample))
                  "ablate neurons mlp L1 N3,N5", (Pipeline.Ablate(NeuronsTarget(1, NodeList.Of(3, 5))))
                  "ablate L0 {\n  loss\n  score induction\n}",
                      (Pipeline.Ablate("L0", body = Pipeline.Loss().Then(Pipeline.Score ScoreKind.Induction)))
                  "run", (Pipeline.Run())
                  "loss", (Pipeline.Loss())
                  "logits top 5", (Pipeline.Logits 5)
                  "logits", (Pipeline.Logits())
                  "predict", (Pipeline.Predict())
                  "generate 20 temperature 0.7 top_k 40", (Pipeline.Generate(20, temperature = 0.7, topK = 40))
                  "circuit full_ov L1H* top 5", (Pipeline.Circuit(CircuitKind.FullOv, "L1H*", 5))
                  "compose k L0H* -> L1H*", (Pipeline.Compose(CompositionKind.K, "L0H*", "L1H*"))
                  "attribute to \" Mary\" vs \" John\"", (Pipeline.Attribute(" Mary", " John"))
                  "attribute", (Pipeline.Attribute())
                  "logit_lens", (Pipeline.LogitLens())
                  "patch heads from \"a b\" metric logit_diff \" Mary\" \" John\"",
                      (Pipeline.Patch(PatchTarget.Heads, TextInput(NodeList.Of "a b"),
                                      LogitDiffMetric(TokenText " Mary", TokenText " John")))
                  "patch resid_pre from tokens [1, 2]",
                      (Pipeline.Patch(PatchTarget.ResidPre, TokenInput(NodeList.Of(NodeList.Of(1, 2)))))
                  "show pattern L1 > out/l1.html", (Pipeline.ShowPattern("L1", "out/l1.html"))
                  "show scores induction", (Pipeline.ShowScores ScoreKind.Induction)
                  "show tokens", (Pipeline.ShowTokens())
                  "cache save out/run.safetensors filter \"blocks.*.attn.hook_pattern\"",
                      (Pipeline.CacheSave("out/run.safetensors", "blocks.*.attn.hook_pattern"))
                  "print blocks.1.attn.hook_pattern", (Pipeline.PrintHook "blocks.1.attn.hook_pattern")
                  "print induction", (Pipeline.Print "induction") ]
            for text, built in cases do
                Expect.equal (Pipeline.Parse text) built (sprintf "`%s`" text)
                Expect.equal (Pipeline.Parse(built.ToText())) built
                    (sprintf "`%s` prints back to text that parses to it" text)

        testCase "a whole study built in C#-style code equals its text" <| fun () ->
            let text =
                ("seed 0\ninput repeat random 50 x2 batch 8\nscore induction\nlet ind = heads where induction > 0.5\n"
                 + "ablate ind mean {\n  loss\n}\nablate L0H*\nscore induction\n")
            let built =
                Pipeline.Seed(0L)
                    .Then(Pipeline.RepeatRandom(50, 2, 8))
                    .Then(Pipeline.Score ScoreKind.Induction)
                    .Then(Pipeline.Let("ind",
                                       SelectionValue(ScoreFilter(NodeList.Of(
                                           ScoreCondition(ScoreKind.Induction, Comparison.Greater, 0.5))))))
                    .Then(Pipeline.Ablate(HeadsTarget(SelectionName "ind"), AblationMode.Mean, Pipeline.Loss()))
                    .Then(Pipeline.Ablate(HeadsTarget(HeadSelector(Nullable 0, Nullable()))))
                    .Then(Pipeline.Score ScoreKind.Induction)
            Expect.equal built (Pipeline.Parse text) "equal pipelines"
            Expect.equal (built.ToText()) text "code prints to the same canonical text"
            Expect.equal (built.Stages |> List.ofSeq) (Parser.Parse(text, "x").Statements |> List.ofSeq)
                "each stage is its AST node"

        testCase "the F# steps compose with >> into the same pipeline" <| fun () ->
            let study =
                Lens.FSharp.Experiment.repeatRandom 50 2 8
                >> Lens.FSharp.Experiment.ablateIn (Lens.FSharp.Experiment.heads "L1H*") AblationMode.Mean
                    Lens.FSharp.Experiment.loss
                >> Lens.FSharp.Experiment.ablate (Lens.FSharp.Experiment.heads "L0H1, L0H2") AblationMode.Zero
                >> Lens.FSharp.Experiment.score ScoreKind.Induction
            Expect.equal (Lens.FSharp.Experiment.build study)
                (Pipeline.Parse
                    ("input repeat random 50 x2 batch 8\nablate L1H* mean {\n  loss\n}\nablate L0H1, L0H2\n"
                     + "score induction")) "F# equals text"

        testCase "composition is associative and Sequence is the same as Then" <| fun () ->
            let a, b, c = Pipeline.RepeatRandom 10, Pipeline.Score ScoreKind.Induction, Pipeline.Loss()
            Expect.equal (a.Then(b).Then(c)) (a.Then(b.Then c)) "associative"
            Expect.equal (Pipeline.Sequence(a, b, c)) (a.Then(b).Then(c)) "Sequence"
            Expect.equal (Pipeline.Empty.Then a) a "Empty is the unit"
            Expect.equal (a.Stages[0].Then(b.Stages[0])) (a.Then b) "stages compose too"

        testCase "pipelines and interventions serialise to AST JSON" <| fun () ->
            let p = Pipeline.Ablate("L1H2", AblationMode.Mean)
            let parsed = AstJson.Serialize(Parser.Parse("ablate L1H2 mean", "<pipeline>"))
            let spanOfText = "\"span\":{\"file\":\"<pipeline>\",\"line\":1,\"column\":1,\"endLine\":1,\"endColumn\":17}"
            let noSpan = "\"span\":{\"file\":\"\",\"line\":0,\"column\":0,\"endLine\":0,\"endColumn\":0}"
            Expect.equal (p.ToJson()) (parsed.Replace(spanOfText, noSpan)) "same JSON apart from the span"
            let json = p.Stages[0].ToJson()
            Expect.stringContains json "\"$type\":\"Ablation\"" "names the intervention"
            Expect.stringContains json "\"mode\":\"mean\"" "and its mode"
            Expect.equal (AstJson.Serialize(Lens.Dsl.Ablation(HeadsTarget(HeadSelector(Nullable 1, Nullable 2)),
                                                              AblationMode.Mean)))
                ("{\"$type\":\"Ablation\",\"target\":{\"$type\":\"HeadsTarget\","
                 + "\"selection\":{\"$type\":\"HeadSelector\",\"layer\":1,\"head\":2}},\"mode\":\"mean\"}")
                    "an intervention alone"
    ]

// ---------------------------------------------------------------------------------------------

let stateTests =
    testList "state" [
        testCase "stages are pure: the state they are given is unchanged, and the same stage gives the same result"
        <| fun () ->
            use env = environment ""
            let start =
                Pipeline.Parse(tinyModel + "input tokens [1, 2, 3, 4, 5, 6]\nablate L0H1")
                    .Apply(ExperimentState.Start env)
            let loss = LossStatement() :> Statement
            let a = loss.Apply start
            let b = loss.Apply start
            Expect.equal start.Results.Count 0 "the given state has no results"
            Expect.equal a.Results.Count 1 "the new state has one"
            Expect.equal (scalarOf a.Results[0]) (scalarOf b.Results[0]) "same number from the same state"
            Expect.equal start.Interventions.Count 1 "the intervention is in the state as data"
            Expect.equal (a.Results[0].Interventions |> List.ofSeq) [ "ablate L0H1" ] "the result records it"

        testCase "running an experiment leaves no tensor alive" <| fun () ->
            let text =
                tinyModel
                    + ("seed 1\ninput repeat random 6 x2 batch 2\nscore induction\nscore prev_token\n"
                       + "score duplicate_token\ndetect induction\nheads where induction > 0\n")
                + ("let p = pattern [[1, 0, 0], [1, 0, 0], [0, 1, 0]]\nablate L0H0 mean {\n  loss\n  run\n}\n"
                   + "ablate L1 resample {\n  logits top 2\n}\nablate neurons mlp L0 N1 {\n  predict\n}\n")
                + ("generate 2 greedy\ngenerate 2 top_k 3\ncircuit ov L1H*\ncircuit qk L0H0\ncircuit full_ov L1H0\n"
                   + "circuit full_qk L1H1 top 2\ncompose k L0H* -> L1H*\nattribute to 3\nattribute\nlogit_lens\n")
                + ("patch resid_pre from repeat random 6 x2 batch 2 metric prob 4\n"
                   + "patch heads from repeat random 6 x2 batch 2\n"
                   + "patch blocks from repeat random 6 x2 batch 2 metric logit_diff 1 2\n")
                + ("show pattern L0\nshow scores\nshow tokens\nprint blocks.0.hook_resid_pre\nprint induction\n"
                   + "input tokens [1, 2, 3]\ndetect p\nprint p\n")
            use env = environment text
            let pipeline = Pipeline.Parse(text, "test.lens")
            pipeline.Execute env |> ignore                               // loads the model
            let before = DisposeScopeManager.Statistics.ThreadTotalLiveCount
            let state = pipeline.Execute env
            Expect.equal (DisposeScopeManager.Statistics.ThreadTotalLiveCount) before
                "as many live tensors as before the run"
            Expect.equal state.Results.Count 29 "every result-producing statement ran"

        testCase "a block's intervention, names and scores end with the block; one without a block lasts" <| fun () ->
            let state =
                run (tinyModel + ("input repeat random 6 x2\nscore prev_token\nablate L0H* {\n  let h = heads L1H0\n"
                                  + "  score prev_token\n  loss\n}\nloss\nablate L0H0 mean\nloss\nprint prev_token\n"))
            let losses = results "loss" state
            Expect.equal (losses |> List.map (fun r -> List.ofSeq r.Interventions))
                [ [ "ablate L0H*" ]; []; [ "ablate L0H0 mean" ] ] "interventions per result"
            Expect.notEqual (scalarOf losses[0]) (scalarOf losses[1]) "ablating changes the loss"
            Expect.isFalse (state.Bindings.ContainsKey "h") "the block's name is gone"
            Expect.equal state.Interventions.Count 1 "the unscoped ablation is still in force"
            Expect.equal state.InterventionLog.Count 2 "both are in the log"
            let scores = results "score" state
            Expect.equal (grid (result "print" state)) (grid scores[0]) "print reads the scores from outside the block"

        testCase "where reads the latest scores; a let freezes the heads it picked" <| fun () ->
            let state =
                run (tinyModel + ("input repeat random 6 x2\nscore prev_token\nlet top = heads where prev_token > 0.0\n"
                                  + "heads top\nheads where prev_token > 2\n"))
            let heads =
                results "heads" state
                    |> List.map (fun r -> (r.Value :?> HeadsValue).Heads |> Seq.map string |> List.ofSeq)
            Expect.equal heads [ [ "L0H0"; "L0H1"; "L1H0"; "L1H1" ]; [] ] "every head scores above 0; none above 2"

        testCase "inputs are recorded as run; a let-bound input is tokenized once" <| fun () ->
            let state =
                run (tinyModel + "seed 3\nlet r = input repeat random 4 x3 batch 2\ninput r\ninput tokens [5, 6, 7]\n")
            Expect.equal state.Inputs.Count 2 "two inputs"
            Expect.equal state.Inputs[0].Ids.Length 2 "batch 2"
            Expect.equal state.Inputs[0].Positions 12 "4 tokens × 3, no BOS for a tokenizer-less model"
            let row = state.Inputs[0].Ids[0]
            Expect.equal row[0..3] row[4..7] "repeated"
            use rep = RepeatedTokens.GenerateInRange(0L, 100L, 4, 3, 2, 3UL)
            Expect.equal (state.Inputs[0].Ids |> Array.concat) (longs rep.Tokens) "the library's seeded generator"
            Expect.equal state.Inputs[1].Tokens[0] [| "5"; "6"; "7" |] "ids stand for tokens without a tokenizer"
    ]

// ---------------------------------------------------------------------------------------------

let libraryTests =
    testList "the library's numbers" [
        testCase "score, detect, loss under ablation, compose, circuit, attribute and patch equal direct library calls"
        <| fun () ->
            let text =
                tinyModel
                + ("seed 11\ninput repeat random 7 x2 batch 3\nscore induction\nscore prev_token\n"
                   + "score duplicate_token\ndetect previous_token exclude_bos\n")
                + "ablate L0H1 mean {\n  loss\n}\nablate L1 {\n  loss\n}\ncompose v L0H* -> L1H*\ncircuit ov L1H1\n"
                + ("input tokens [[3, 14, 15, 92, 65], [35, 89, 79, 32, 38]]\nattribute to 7 vs 9\n"
                   + "patch heads from tokens [[3, 14, 15, 92, 66], [35, 89, 79, 32, 37]] metric logit_diff 7 9\n")
            let state = run text
            use model = HookedTransformer.Load tinyDir
            use rep = RepeatedTokens.GenerateInRange(0L, 100L, 7, 2, 3, 11UL)
            use ind = HeadScores.Induction(model, rep)
            use prev = HeadScores.PreviousToken(model, rep)
            use dup = HeadScores.DuplicateToken(model, rep)
            let scores = results "score" state
            Expect.equal (flatGrid (grid scores[0])) (asReported ind.Scores) "induction"
            Expect.equal (flatGrid (grid scores[1])) (asReported prev.Scores) "prev_token"
            Expect.equal (flatGrid (grid scores[2])) (asReported dup.Scores) "duplicate_token"
            let rows = [ for r in 0L .. 2L -> rep.Tokens[r] ]
            use detected = HeadDetector.DetectHead(model, rows, "previous_token_head", null, true, false, "mul")
            Expect.equal (flatGrid (grid (result "detect" state))) (asReported detected) "detect"
            let losses = results "loss" state
            use meanAbl =
                LibAblation.Run(model, rep.Tokens, [ LibAblation.Mean(AblationTarget.Head(0, 1), rep.Tokens) ],
                                ReturnType.Loss)
            Expect.equal (scalarOf losses[0]) (Numbers.FromFloat(meanAbl.Loss.item<float32>()))
                "mean ablation of a head"
            use blockAbl =
                LibAblation.Run(model, rep.Tokens, [ LibAblation.Zero(AblationTarget.Block 1) ], ReturnType.Loss)
            Expect.equal (scalarOf losses[1]) (Numbers.FromFloat(blockAbl.Loss.item<float32>()))
                "a whole layer ablates its block"
            use comp = Composition.AllScores(model, "V")
            let expected =
                [| for h1 in 0L .. 1L ->
                    [| for h2 in 0L .. 1L -> Numbers.FromFloat((comp.Scores[0L, h1, 1L, h2]).item<float32>()) |] |]
            match (result "compose" state).Value with
            | :? MatrixValue as m ->
                Expect.equal m.Values expected "composition"
                Expect.equal m.RowLabels [| "L0H0"; "L0H1" |] "rows"
            | other -> failtestf "compose gave %s" other.Kind
            use ov = model.OV
            use head = ov[1L, 1L]
            use copying = Composition.CopyingScore head
            match (result "circuit" state).Value with
            | :? CircuitValue as c ->
                Expect.equal c.Heads.Rows[0].[1] (box (Numbers.FromFloat(copying.item<float32>()))) "copying score"
            | other -> failtestf "circuit gave %s" other.Kind
            use tokens = torch.tensor([| 3L; 14L; 15L; 92L; 65L; 35L; 89L; 79L; 32L; 38L |]).reshape(2L, 5L)
            use clean = torch.tensor([| 3L; 14L; 15L; 92L; 66L; 35L; 89L; 79L; 32L; 37L |]).reshape(2L, 5L)
            use runResult = model.RunWithCache tokens
            use stack = runResult.Cache.StackHeadResults(-1, false, PositionSlice.At -1L)
            use attrs = runResult.Cache.LogitAttrs(stack.Stack, 7L, Nullable 9L, PositionSlice.At -1L)
            use perHead = attrs.mean([| 1L |])
            Expect.equal (flatGrid (grid (result "attribute" state))) (asReported perHead) "direct logit attribution"
            use cleanRun = model.RunWithCache clean
            use correct = torch.tensor 7L
            use incorrect = torch.tensor 9L
            use patched =
                Patching.AttnHeadOutAllPos(model, tokens, cleanRun.Cache, LogitDifference.Metric(correct, incorrect))
            // The DSL's clean run records only what patching needs, so its forward may take the fused
            // attention path; the two agree to ~1e-7, not bit for bit.
            let viaDsl, direct = flatGrid (grid (result "patch" state)), asReported patched.Values
            Expect.equal viaDsl.Length direct.Length "activation patching of heads: size"
            Array.iter2 (fun a b ->
                Expect.floatClose { absolute = 1e-5; relative = 1e-5 } a b "activation patching of heads") viaDsl direct
            let summary = (result "patch" state).Value.Summary |> Seq.map (fun kv -> kv.Key) |> List.ofSeq
            Expect.equal summary [ "clean"; "corrupted" ] "the baselines come with it"

        testCase "per-repeat losses are the mean loss of predicting each copy's tokens" <| fun () ->
            let state = run (tinyModel + "seed 2\ninput repeat random 5 x3 batch 2\nloss\n")
            let loss = result "loss" state
            use model = HookedTransformer.Load tinyDir
            use rep = RepeatedTokens.GenerateInRange(0L, 100L, 5, 3, 2, 2UL)
            use perToken = model.Loss(rep.Tokens, true)
            let l = perToken.to_type(torch.float64)
            let copy (first: int64) (count: int64) = l.narrow(1L, first, count).mean().item<float>()
            let parts = loss.Value.Summary |> Seq.map (fun kv -> kv.Key, kv.Value) |> List.ofSeq
            // No BOS: the first token of copy 1 has no predecessor, so copy 1 has 4 predicted tokens (losses 0..3).
            Expect.equal (parts |> List.map fst) [ "repeat 1"; "repeat 2"; "repeat 3" ] "one per copy"
            let close what (a: float) (b: float) = Expect.floatClose Accuracy.medium a b what
            close "repeat 1" (snd parts[0]) (copy 0L 4L)
            close "repeat 2" (snd parts[1]) (copy 4L 5L)
            close "repeat 3" (snd parts[2]) (copy 9L 5L)
            Expect.equal (scalarOf loss) (Numbers.FromFloat(model.Loss(rep.Tokens).item<float32>()))
                "the mean is the library's loss"
    ]

// ---------------------------------------------------------------------------------------------

let checkTests =
    testList "checks" [
        testCase "layer 7 in a 2-layer model, at the selector" <| fun () ->
            let text = tinyModel + "input tokens [1, 2, 3]\nablate L7H0 mean\n"
            Expect.equal (errorText text)
                ("test.lens:3:8: layer 7 is out of range: the model has 2 layers (L0..L1)\n  ablate L7H0 mean\n"
                 + "         ^") "message"

        testCase "a head out of range" <| fun () ->
            match checkErrors (tinyModel + "circuit ov L0H1, L1H2") with
            | [ e ] ->
                Expect.equal (e.Line, e.Column) (2, 18) "at L1H2"
                Expect.equal e.Problem "head 2 is out of range: the model has 2 heads per layer (H0..H1)" "problem"
            | other -> failtestf "expected one error, got %A" other

        testCase "a string that is not one token names its pieces" <| fun () ->
            match checkErrors ("input \"When Mary and John went to the store\"\n"
                               + "attribute to \" Mary\" vs \" John Smith\"\n") with
            | [ e ] ->
                Expect.equal (e.Line, e.Column) (2, 25) "at the string"
                Expect.equal e.Problem ("\" John Smith\" is not one token: gpt2 splits it into 2 tokens [\" John\", \" "
                                        + "Smith\"]") "problem"
            | other -> failtestf "expected one error, got %A" other

        testCase "an unknown hook suggests the nearest valid names" <| fun () ->
            match checkErrors (tinyModel + "input tokens [1, 2]\nprint blocks.1.attn.hook_patern") with
            | [ e ] ->
                Expect.equal (e.Line, e.Column) (3, 7) "at the hook"
                Expect.stringContains e.Problem ("unknown hook point 'blocks.1.attn.hook_patern'; did you mean "
                                                 + "'blocks.1.attn.hook_pattern'") "suggestion"
            | other -> failtestf "expected one error, got %A" other

        testCase "an unknown model is reported at its statement, and nothing else is checked against it" <| fun () ->
            match checkErrors "model demo-attn-only-3l\ninput tokens [1, 2]\nloss" with
            | [ e ] ->
                Expect.equal (e.Line, e.Column) (1, 7) "at the name"
                Expect.stringContains e.Problem ("cannot load model 'demo-attn-only-3l': unknown model "
                                                 + "'demo-attn-only-3l'") "problem"
            | other -> failtestf "expected one error, got %A" other

        testCase "every problem is reported, and nothing runs when any check fails" <| fun () ->
            let out = Path.Combine(Path.GetTempPath(), sprintf "lens-check-%d.html" (Random.Shared.Next()))
            let text =
                tinyModel + sprintf
                    "input tokens [1, 2, 3]\nshow pattern L1 > %s\nloss\nheads L3H0\nprint blocks.0.hook_resid_pree\n"
                        out
            let seen = ResizeArray()
            use env =
                new ExperimentEnvironment(FileName = "test.lens", SourceText = text, OnResult = fun r -> seen.Add r)
            let e = catch<ExperimentCheckException> (fun () -> Pipeline.Parse(text, "test.lens").Execute env |> ignore)
            Expect.equal (e.Errors |> Seq.map (fun x -> x.Line) |> List.ofSeq) [ 5; 6 ] "both problems"
            Expect.isEmpty seen "no statement ran"
            Expect.isFalse (File.Exists out) "the earlier show wrote nothing"
            Expect.isFalse (e.Message.Contains "   at ") "no stack trace in the message"

        testCase "a failure while running names its statement" <| fun () ->
            let text = tinyModel + "input tokens [1, 2, 3, 4]\nscore prev_token\nshow pattern where prev_token > 5\n"
            use env = environment text
            let e = catch<ExperimentRunException> (fun () -> Pipeline.Parse(text, "test.lens").Execute env |> ignore)
            Expect.equal e.Message ("test.lens:4:1: the selection where prev_token > 5 picks no heads: nothing to "
                                    + "show\n  show pattern where prev_token > 5\n  ^") "message"

        testCase "a pipeline built in code is named by its statement" <| fun () ->
            use env = new ExperimentEnvironment(ModelOverride = tinyDir)
            let errors = Pipeline.RepeatRandom(4).Then(Pipeline.Heads "L0H5").Check(ExperimentState.Start env)
            Expect.equal (errors |> Seq.map string |> List.ofSeq)
                [ "<pipeline>: in `heads L0H5`: head 5 is out of range: the model has 2 heads per layer (H0..H1)" ]
                "message"
    ]

// ---------------------------------------------------------------------------------------------

let goldenDir = Path.Combine(repoRoot, "tests", "golden", "dsl-runtime-errors")

/// What checking (and, when the checks pass, running) a golden experiment reports.
let goldenOutput (file: string) =
    let name = Path.GetFileName file
    let text = File.ReadAllText file
    use env =
        new ExperimentEnvironment(FileName = name, SourceText = text, ReadDirectory = goldenDir,
                                  WriteDirectory = Path.GetTempPath())
    let pipeline = Pipeline.Parse(text, name)
    let errors = pipeline.Check(ExperimentState.Start env)
    if errors.Count > 0 then (errors |> Seq.map string |> String.concat "\n") + "\n"
    else
        try
            pipeline.Apply(ExperimentState.Start env) |> ignore
            failtestf "%s ran without an error" name
        with :? ExperimentRunException as e -> e.Message + "\n"

let goldenTests =
    let cases = Directory.GetFiles(goldenDir, "*.lens") |> Array.sort
    testList "golden errors" [
        testCase "there are at least 20 golden cases, each with its expected message" <| fun () ->
            Expect.isGreaterThanOrEqual cases.Length 20 "golden cases"
            for f in Directory.GetFiles goldenDir do
                let partner = Path.ChangeExtension(f, (if f.EndsWith ".lens" then ".txt" else ".lens"))
                Expect.isTrue (File.Exists partner) (sprintf "%s has a partner %s" f partner)
        for file in cases do
            testCase (Path.GetFileNameWithoutExtension file) <| fun () ->
                let actual = goldenOutput file
                let expectedFile = Path.ChangeExtension(file, ".txt")
                // LENS_UPDATE_GOLDEN=1 rewrites the expected files (review the diff before committing).
                if Environment.GetEnvironmentVariable "LENS_UPDATE_GOLDEN" = "1" then
                    File.WriteAllText(expectedFile, actual)
                Expect.equal actual (File.ReadAllText(expectedFile).Replace("\r\n", "\n")) "message"
    ]

// ---------------------------------------------------------------------------------------------

let sessionTests =
    testList "session" [
        testCase "statements submitted one at a time share the state; a bad one changes nothing" <| fun () ->
            use env = new ExperimentEnvironment(FileName = "<repl>", SourceText = "", ModelOverride = tinyDir)
            let session = ExperimentSession env
            Expect.isEmpty (session.Submit "input repeat random 5 x2") "no result from input"
            Expect.equal (session.Submit "score prev_token" |> Seq.map (fun r -> r.Command) |> List.ofSeq) [ "score" ]
                "a score"
            Expect.isEmpty (session.Submit "let early = heads L0H*") "let"
            let e = catch<ExperimentCheckException> (fun () -> session.Submit "ablate L4H0" |> ignore)
            Expect.equal e.Errors[0].Line 4 "located in the session's text"
            Expect.throwsT<DslParseException> (fun () -> session.Submit "scroe induction" |> ignore) "a syntax error"
            let r = session.Submit "ablate early {\n  loss\n}\nheads early"
            Expect.equal (r |> Seq.map (fun r -> r.Command) |> List.ofSeq) [ "loss"; "heads" ]
                "a block and a name bound two submissions ago"
            Expect.equal (session.State.Results.Count) 3 "results accumulate"
            Expect.isTrue (ExperimentSession.IsIncomplete "ablate L0H1 {\n  loss") "an open block needs more lines"
            Expect.isFalse (ExperimentSession.IsIncomplete "print \"{\" # {")
                "braces in strings and comments do not count"
    ]

[<Tests>]
let tests = testList "dsl runtime" [ pipelineTests; stateTests; libraryTests; checkTests; goldenTests; sessionTests ]
