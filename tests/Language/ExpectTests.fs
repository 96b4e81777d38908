/// Experiments that check themselves: `expect`, `lens test`, `lens diff`, scores on any repeated input, and
/// the provenance of run records. On the demo model (its measured heads) and the tiny-mlp fixture.
module Lens.Tests.ExpectTests

open System
open System.IO
open System.Security.Cryptography
open System.Text.Json
open Expecto
open Lens.Analysis
open Lens.Dsl
open Lens.Dsl.Runtime
open Lens.Tests.TestSupport
open Lens.Tests.Processes
open Lens.Tests.CliRunTests

/// The issue's example, on the demo model.
let issueExample =
    ("input repeat random 50 x2 seed 0\nscore induction\nexpect induction L1H1 > 0.8\nexpect prev_token L0H2 >= 0.9\n"
     + "loss\nexpect loss repeat 2 < 0.6\nexpect loss < 12\n")

let expectations (json: string) =
    resultsOf json |> List.filter (fun r -> r.GetProperty("kind").GetString() = "expectation")

/// Runs experiment text in-process on the demo model (or the model the text names) and returns the final state.
let runDemo (text: string) =
    use env =
        new ExperimentEnvironment(FileName = "test.lens", SourceText = text, ReadDirectory = fixture [ "dsl-runtime" ])
    Pipeline.Parse(text, "test.lens").Execute env

let checkDemo (text: string) =
    use env =
        new ExperimentEnvironment(FileName = "test.lens", SourceText = text, ReadDirectory = fixture [ "dsl-runtime" ])
    Pipeline.Parse(text, "test.lens").Check(ExperimentState.Start env) |> Seq.map string |> List.ofSeq

let scoreGrid (kind: string) (state: ExperimentState) =
    match (state.Results |> Seq.find (fun r -> r.Text = "score " + kind)).Value with
    | :? LayerHeadValue as v -> v.Values
    | other -> failtestf "score gave %s" other.Kind

let expectTests =
    testList "expect" [
        testCase ("the issue's example passes on the demo model; with 0.95 it fails at 3:1 and every statement still "
                  + "runs") <| fun () ->
            let file = experiment "issue-example.lens" issueExample
            let r, json = runJson file []
            Expect.equal (Schema.validate json) [] "valid record"
            let checks = expectations json
            Expect.equal checks.Length 4 "four expectations recorded"
            for c in checks do
                Expect.isTrue (c.GetProperty("passed").GetBoolean())
                    (sprintf "%s held" (c.GetProperty("target").GetString()))
            let induction = checks.Head.GetProperty("value").GetDouble()
            Expect.isGreaterThan induction 0.8 "the recorded value is the one compared"
            Expect.stringContains r.Stdout "4 expectations: all held" "says so"
            let failing =
                experiment "issue-example-095.lens"
                    (issueExample.Replace("L1H1 > 0.8", "L1H1 > 0.95").Replace("loss < 12", "loss < 1"))
            let f = lens [ "run"; failing ]
            Expect.equal f.ExitCode 1 "a failed expectation exits 1"
            Expect.stringContains f.Stderr
                (sprintf "%s:3:1: expected induction L1H1 > 0.95, got %s" failing
                    ((float32 induction).ToString("0.000", Globalization.CultureInfo.InvariantCulture)))
                "located, the value as the table prints it"
            Expect.stringContains f.Stderr (sprintf "%s:7:1: expected loss < 1, got " failing) "every failure is listed"
            Expect.stringContains f.Stderr "2 of 4 expectations failed." "counted"
            Expect.stringContains f.Stdout "── line 7: expect loss < 1" "statements after the first failure ran"
            noStackTrace f

        testCase "== needs a tolerance and holds within it; the record keeps operator, threshold and tolerance"
        <| fun () ->
            let state =
                runDemo ("input repeat random 20 x2 seed 3\nloss\nexpect loss == 100 within 1000\n"
                         + "expect loss == 100 within 1\n")
            let checks =
                state.Results |> Seq.choose (fun r -> match r.Value with :? ExpectationValue as e -> Some e | _ -> None)
                    |> List.ofSeq
            Expect.equal (checks |> List.map (fun c -> c.Passed)) [ true; false ] "inside and outside the tolerance"
            Expect.equal checks[0].Tolerance (Nullable 1000.0) "the tolerance"
            Expect.equal (ExpectStages.Failures state |> Seq.map (fun e -> e.Line) |> List.ofSeq) [ 4 ]
                "the failure at its line"

        testCase "a score target without a score in scope reads the current input's scores, as where does" <| fun () ->
            let state = runDemo "input repeat random 30 x2 seed 1\nexpect prev_token L0H2 > 0.5\nscore prev_token\n"
            let read =
                state.Results
                    |> Seq.pick (fun r -> match r.Value with :? ExpectationValue as e -> Some e.Actual | _ -> None)
            Expect.equal read (scoreGrid "prev_token" state).[0].[2] "the same number as the score statement"

        testCase "expectations inside a block read the block's results; after the block the outer ones" <| fun () ->
            let state =
                runDemo (("input repeat random 30 x2 batch 2 seed 2\nloss\nablate L0H2 mean {\n  loss\n"
                          + "  expect loss repeat 2 > 5\n}\n")
                         + ("expect loss repeat 2 < 2\nablate L1H* {\n  score induction\n}\n"
                            + "expect duplicate_token L0H0 < 2\n"))
            let values =
                state.Results
                    |> Seq.choose
                        (fun r -> match r.Value with :? ExpectationValue as e -> Some (e.Actual, e.Passed) | _ -> None)
                            |> List.ofSeq
            let losses =
                state.Results |> Seq.filter (fun r -> r.Command = "loss")
                    |> Seq.map
                        (fun r -> r.Value.Summary |> Seq.find (fun kv -> kv.Key = "repeat 2") |> fun kv -> kv.Value)
                            |> List.ofSeq
            Expect.equal (values |> List.map fst |> List.take 2) [ losses[1]; losses[0] ]
                "the block's loss inside, the outer loss after"
            Expect.isTrue (values |> List.forall snd) "all held"

        testCase ("every kind of target reads its cell: detect, patch cells and baselines, compose, circuit, "
                  + "attribute, predict") <| fun () ->
            let text =
                ("let clean = input tokens [50256, 1200, 1300, 1400, 1500, 1600, 1700, 1200]\n"
                 + "input tokens [50256, 1800, 1300, 1400, 1500, 1600, 1700, 1200]\n")
                + ("detect previous_token\nexpect detect previous_token L0H2 > 0.5\npredict\n"
                   + "expect predict accuracy < 1\n")
                + ("patch heads from clean metric logit_diff 1300 1800\nexpect patch heads L1H1 > 1\n"
                   + "expect patch heads clean > 1\n")
                + ("patch heads_by_pos from clean metric logit_diff 1300 1800\n"
                   + "expect patch heads_by_pos L1H1 pos 7 > 1\n")
                + "patch resid_pre from clean metric logit_diff 1300 1800\nexpect patch resid_pre L0 pos 1 > 1\n"
                + ("compose k L0H* -> L1H*\nexpect compose k L0H2 L1H1 > 0.2\ncircuit ov L1H1\n"
                   + "expect circuit ov L1H1 copying > 0.5\n")
                + ("input clean\nattribute to 1300 vs 1800\nexpect attribute L1H1 > 0.5\n"
                   + "expect attribute 1_attn_out > 0.2\nexpect attribute embed < 0.1\n")
            let state = runDemo text
            let checks =
                state.Results |> Seq.choose (fun r -> match r.Value with :? ExpectationValue as e -> Some e | _ -> None)
                    |> List.ofSeq
            Expect.equal checks.Length 11 "every expectation ran"
            for c in checks do Expect.isTrue c.Passed (sprintf "%s: %g" c.Target c.Actual)
            let patch = state.Results |> Seq.find (fun r -> r.Text.StartsWith "patch heads from")
            let grid = (patch.Value :?> LayerHeadValue).Values
            Expect.equal (checks |> List.find (fun c -> c.Target = "patch heads L1H1")).Actual grid.[1].[1]
                "the patched cell"
            Expect.equal (checks |> List.find (fun c -> c.Target = "patch heads clean")).Actual
                (patch.Value.Summary |> Seq.find (fun kv -> kv.Key = "clean")).Value "the clean baseline"

        testCase "the checks find targets that cannot exist, at the target" <| fun () ->
            let errors =
                checkDemo ("input repeat random 10 x2\nexpect loss < 2\nscore induction\nexpect induction L1H7 > 0.5\n"
                           + "expect induction L3H0 > 0.5\nexpect patch head L1H0 > 1\nexpect loss repeat > 1\n")
            Expect.equal errors.Length 5 (String.concat "\n" errors)
            Expect.stringContains errors[0]
                "test.lens:2:8: `expect loss ...` reads the most recent `loss` result in scope, and there is none here"
                "not computed earlier"
            Expect.stringContains errors[1]
                "test.lens:4:18: head 7 is out of range: the model has 4 heads per layer (H0..H3)" "head out of range"
            Expect.stringContains errors[2] "test.lens:5:18: layer 3 is out of range" "layer out of range"
            Expect.stringContains errors[3]
                "test.lens:6:14: unknown patch target 'head' in the expectation; did you mean 'heads'?"
                "a misspelt qualifier"
            Expect.stringContains errors[4]
                "test.lens:7:13: `expect loss` reads the mean loss (`loss`) or one copy's (`loss repeat 2`)"
                "a malformed cell"
    ]

let expectationsOf (state: ExperimentState) =
    state.Results |> Seq.choose (fun r -> match r.Value with :? ExpectationValue as e -> Some e | _ -> None)
        |> List.ofSeq

let resultOf (prefix: string) (state: ExperimentState) =
    (state.Results |> Seq.find (fun r -> r.Text.StartsWith prefix)).Value

let actualOf (target: string) (checks: ExpectationValue list) =
    match checks |> List.tryFind (fun c -> c.Target = target) with
    | Some c -> c.Actual
    | None -> failtestf "no expectation on %s (have %A)" target (checks |> List.map (fun c -> c.Target))

let prompt = "When Mary and John went to the store, John gave a drink to"

let printedValueTests =
    testList "expect reads every printed value" [
        testCase ("logits (a token's logit, probability and rank; a listed rank), run, logit_lens, print, heads, "
                  + "predict and cache load, against the model's own numbers") <| fun () ->
            let cachePath = Path.Combine(scratch.Force(), "expect-cache.safetensors")
            let text =
                sprintf
                    "input \"%s\"\nlogits top 5\nexpect logit \" Mary\" > -100\n\
                     expect logits \" Mary\" probability > 0\nexpect logits \" Mary\" rank >= 1\n" prompt
                + ("expect logits 1300 logit > -100\nexpect logits rank 1 id >= 0\n"
                   + "expect logits rank 1 probability > 0\nrun\nexpect run probability > 0\nexpect run id >= 0\n")
                + ("logit_lens\nexpect logit_lens 1_pre probability > 0\nexpect logit_lens final_post final > 0\n"
                   + "print blocks.0.hook_resid_post\n")
                + ("expect print blocks.0.hook_resid_post norm > 1\nexpect print blocks.0.hook_resid_post max > 0\n"
                   + "heads L1H*\nexpect heads count == 4 within 0\n")
                + "predict\nexpect predict pos 10 > 0.5\n"
                + sprintf
                    "cache save %s\ncache load %s\nexpect cache blocks.0.attn.hook_attn_scores == 0 within 0\n\
                     expect cache max == 0 within 0\n" cachePath cachePath
            let state = runDemo text
            let checks = expectationsOf state
            Expect.equal checks.Length 16 "every expectation ran"
            for c in checks do Expect.isTrue c.Passed (sprintf "%s: %g" c.Target c.Actual)
            use model = Lens.ModelLoader.Load "demo-attn-only-2l"
            use tokens = model.ToTokens prompt
            use run = model.RunWithCache tokens
            use last = run.Logits.[0L, -1L].to_type(TorchSharp.torch.float64)
            let mary = int64 (model.ToSingleToken " Mary")
            let logit = last.[mary].item<float>()
            Expect.floatClose Accuracy.medium (actualOf "logit \" Mary\"" checks) logit
                "the logit of \" Mary\" at the last position"
            use probs = last.softmax(-1L)
            Expect.floatClose Accuracy.medium (actualOf "logits \" Mary\" probability" checks)
                (probs.[mary].item<float>()) "its probability"
            use above = last.gt(TorchSharp.torch.tensor logit)
            Expect.equal (actualOf "logits \" Mary\" rank" checks) (float (above.sum().item<int64>() + 1L)) "its rank"
            Expect.floatClose Accuracy.medium (actualOf "logits 1300 logit" checks) (last.[1300L].item<float>())
                "a token by id"
            let top = last.argmax().item<int64>()
            Expect.equal (actualOf "logits rank 1 id" checks) (float top) "the top token"
            Expect.equal (actualOf "run id" checks) (float top) "run predicts the top token"
            Expect.floatClose Accuracy.medium (actualOf "run probability" checks) (probs.[top].item<float>())
                "with its probability"
            Expect.floatClose Accuracy.medium (actualOf "logits rank 1 probability" checks) (probs.[top].item<float>())
                "the listed rank's probability"
            Expect.floatClose Accuracy.medium (actualOf "logit_lens final_post final" checks)
                (probs.[top].item<float>()) "the logit lens's last row is the model's prediction"
            use resid = run.Cache.["blocks.0.hook_resid_post"].to_type(TorchSharp.torch.float64)
            Expect.floatClose Accuracy.medium (actualOf "print blocks.0.hook_resid_post norm" checks)
                (resid.norm().item<float>()) "the activation's norm"
            Expect.floatClose Accuracy.medium (actualOf "print blocks.0.hook_resid_post max" checks)
                (resid.max().item<float>()) "its max"
            let predict = resultOf "predict" state :?> TableValue
            Expect.equal (actualOf "predict pos 10" checks) (predict.Rows.[10].[4] :?> float)
                "the prediction's probability at position 10"
            Expect.equal (actualOf "cache max" checks) 0.0
                "a cache compared with itself: masked attention scores (-inf in both) differ by 0, not nan"

        testCase "generated text, attribute patch cells, and failures located with their value" <| fun () ->
            let text =
                ("let clean = input tokens [50256, 1200, 1300, 1400, 1500, 1600, 1700, 1200]\n"
                 + "input tokens [50256, 1800, 1300, 1400, 1500, 1600, 1700, 1200]\n")
                + ("attribute patch heads from clean metric logit_diff 1300 1800\n"
                   + "expect attribute patch heads L1H1 > 0\nexpect attribute patch heads clean > 1\n")
                + ("generate 3 greedy\nexpect generated contains \"<|endoftext|>\"\n"
                   + "expect generated new equals \"nothing like this\"\n")
                + "logits top 3\nexpect logit 1300 > 1000\n"
            let state = runDemo text
            let patch = resultOf "attribute patch" state
            let checks = expectationsOf state
            Expect.equal (actualOf "attribute patch heads L1H1" checks) ((patch :?> LayerHeadValue).Values.[1].[1])
                "the head's estimated change"
            Expect.equal (actualOf "attribute patch heads clean" checks)
                (patch.Summary |> Seq.find (fun kv -> kv.Key = "clean")).Value "the clean metric"
            let generated = resultOf "generate" state :?> TextValue
            let texts =
                state.Results
                    |> Seq.choose (fun r -> match r.Value with :? TextExpectationValue as e -> Some e | _ -> None)
                        |> List.ofSeq
            Expect.equal (texts |> List.map (fun t -> t.Passed)) [ true; false ] "contains holds; equals does not"
            Expect.equal texts.[1].Actual (String.Concat generated.Tokens.[0]) "`new` reads the new tokens' text"
            let failures = ExpectStages.Failures state |> Seq.map string |> List.ofSeq
            Expect.equal failures.Length 2 (String.concat "\n" failures)
            Expect.stringContains failures.[0]
                (sprintf "test.lens:8:1: expected generated new equals \"nothing like this\", got %s"
                    (Printer.Quote texts.[1].Actual)) "the text failure"
            Expect.stringContains failures.[1] "test.lens:10:1: expected logit 1300 > 1000, got "
                "the logit failure, at its line and column"

        testCase "the checks find printed-value targets that cannot exist, at the word" <| fun () ->
            let errors =
                checkDemo (sprintf "input \"%s\"\nexpect logit \" Mary\" > 3\nlogits top 5\n\
                                    expect logits rank 6 logit > 1\nexpect logit \" Maryxyz\" > 3\n" prompt
                           + ("expect logits \" Mary\" row 2 > 3\nrun\nexpect run > 0.5\nlogit_lens\n"
                              + "expect logit_lens 7_pre probability > 0\n")
                           + ("print blocks.0.hook_resid_post\nexpect print blocks.0.hook_resid_post median > 0\n"
                              + "generate 2\nexpect generated > 2\nexpect loss contains \"x\"\n")
                           + "expect cache max < 1\n")
            Expect.equal errors.Length 10 (String.concat "\n" errors)
            Expect.stringContains errors.[0]
                ("test.lens:2:8: `expect logits ...` reads the most recent `logits` result in scope, and there is none "
                 + "here") "not computed yet"
            Expect.stringContains errors.[1]
                "test.lens:4:20: rank 6 is not listed: the logits statement lists the top 5" "a rank beyond the listed"
            Expect.stringContains errors.[2] "test.lens:5:15: \" Maryxyz\" is not one token" "a token that is not one"
            Expect.stringContains errors.[3] "test.lens:6:27: row 2 is out of range: the input has 1 rows"
                "a row out of range"
            Expect.stringContains errors.[4] "test.lens:8:8: name a column of the run result: probability or id"
                "a missing column"
            Expect.stringContains errors.[5]
                "test.lens:10:19: '7_pre' is not a row of the logit lens; the rows are 0_pre, 1_pre, final_post"
                "a logit lens row"
            Expect.stringContains errors.[6]
                ("test.lens:12:39: name a column of the print blocks.0.hook_resid_post result: mean, std, min, max or "
                 + "norm") "a statistic"
            Expect.stringContains errors.[7] "test.lens:14:8: `expect generated` compares text"
                "generated text is not a number"
            Expect.stringContains errors.[8] "test.lens:15:8: only generated text is compared with contains or equals"
                "a number is not text"
            Expect.stringContains errors.[9]
                "test.lens:16:8: `expect cache ...` reads the most recent `cache load` result in scope" "no cache load"
    ]

let testCommandTests =
    testList "lens test" [
        testCase "lens test examples: every shipped example states expectations, and they hold" <| fun () ->
            let r = ok (lens [ "test"; "examples" ]) "lens test examples"
            let examples = Directory.GetFiles(Path.Combine(repoRoot, "examples"), "*.lens")
            Expect.isGreaterThanOrEqual examples.Length 4 "the examples"
            for e in examples do
                Expect.isTrue (File.ReadAllLines e |> Array.exists (fun l -> l.TrimStart().StartsWith "expect "))
                    (sprintf "%s states an expectation" e)
                Expect.stringContains r.Stdout (sprintf "PASS  examples/%s (" (Path.GetFileName e)) "one line per file"
            Expect.stringContains r.Stdout (sprintf "%d passed, 0 failed" examples.Length) "the final line"

        testCase "a failed expectation and an error each fail their file; the others pass; exit 1" <| fun () ->
            let dir = Path.Combine(scratch.Force(), "suite")
            Directory.CreateDirectory dir |> ignore
            File.WriteAllText(Path.Combine(dir, "a-pass.lens"), issueExample)
            File.WriteAllText(Path.Combine(dir, "b-fail.lens"), issueExample.Replace("L1H1 > 0.8", "L1H1 > 0.95"))
            File.WriteAllText(Path.Combine(dir, "c-error.lens"), "input repeat random 10\nexpect loss < 2\n")
            let r = lensIn dir [] [ "test" ]
            Expect.equal r.ExitCode 1 "exit 1"
            Expect.stringContains r.Stdout "PASS  ./a-pass.lens (4 expectations" "the passing file"
            Expect.stringContains r.Stdout "FAIL  ./b-fail.lens (1 of 4 expectations failed" "the failing file"
            Expect.stringContains r.Stdout "./b-fail.lens:3:1: expected induction L1H1 > 0.95, got 0.9"
                "with its failure"
            Expect.stringContains r.Stdout "ERROR ./c-error.lens" "the broken file"
            Expect.stringContains r.Stdout "1 passed, 2 failed" "the final line"
            Expect.equal (lens [ "test"; Path.Combine(dir, "absent") ]).ExitCode 2
                "a path that is not there is a usage error"
    ]

let diffTests =
    testList "lens diff" [
        testCase "two runs of the same experiment: nothing changed, exit 0" <| fun () ->
            let file = experiment "diff-same.lens" issueExample
            let _, first = runJson file []
            let _, second = runJson file []
            let a = experiment "diff-a.json" first
            let b = experiment "diff-b.json" second
            let r = ok (lens [ "diff"; a; b ]) "lens diff of two runs"
            Expect.stringContains r.Stdout "no differences beyond the tolerance in 6 results" "nothing changed"

        testCase "runs on two different models list the changed cells, the model and the files read; exit 1"
        <| fun () ->
            let file =
                experiment "diff-models.lens"
                    "input tokens [[1, 5, 9, 7, 5, 9, 7]]\nscore induction\nscore prev_token\nloss\n"
            let _, demo = runJson file []
            let _, tiny = runJson file [ "--model"; tinyDir ]
            let a = experiment "diff-demo.json" demo
            let b = experiment "diff-tiny.json" tiny
            let r = lens [ "diff"; a; b ]
            Expect.equal r.ExitCode 1 "something changed"
            let scoreTiny =
                resultsOf tiny |> List.find (fun x -> x.GetProperty("statement").GetString() = "score induction")
            let scoreDemo =
                resultsOf demo |> List.find (fun x -> x.GetProperty("statement").GetString() = "score induction")
            let before = (valuesOf scoreDemo).[1].[1]
            let after = (valuesOf scoreTiny).[1].[1]
            Expect.stringContains r.Stdout
                (sprintf "line 2 `score induction`: L1H1 %s → %s" (Numbers.Text before) (Numbers.Text after))
                "a changed cell: statement, cell, before, after"
            Expect.stringContains r.Stdout "line 2 `score induction`: L1H3 " "a head only one model has"
            Expect.stringContains r.Stdout "line 4 `loss`: value " "the loss"
            Expect.stringContains r.Stdout "model weights_sha256: " "the model hash"
            Expect.stringContains r.Stdout "file read only after: model " "the fixture's files"
            let loose = lens [ "diff"; a; a; "--tolerance"; "0.5" ]
            Expect.equal loose.ExitCode 0 "a record against itself"
            Expect.equal (lens [ "diff"; a; Path.Combine(scratch.Force(), "absent.json") ]).ExitCode 2
                "a missing record is a usage error"
    ]

let repeatedInputTests =
    testList "scores on any repeated input" [
        testCase "RepeatPeriod finds the shortest block after no leading token or one" <| fun () ->
            let detect (row: int64 list) =
                RepeatPeriod.Detect(Array.ofList row) |> Option.ofObj
                    |> Option.map (fun p -> p.Length, p.Copies, p.Offset)
            Expect.equal (detect [ 1L; 5L; 9L; 7L; 5L; 9L; 7L ]) (Some (3, 2, 1)) "a BOS-like prefix"
            Expect.equal (detect [ 5L; 9L; 7L; 5L; 9L; 7L ]) (Some (3, 2, 0)) "no prefix"
            Expect.equal (detect [ 5L; 9L; 5L; 9L; 5L; 9L ]) (Some (2, 3, 0)) "three copies"
            Expect.equal (detect [ 5L; 9L; 7L; 5L; 9L ]) None "a partial copy is not a repeat"
            Expect.equal (detect [ 1L; 2L; 3L; 4L ]) None "no repeat"
            Expect.equal (detect [ 4L ]) None "one token"

        testCase "score induction and duplicate_token on hand-written tokens equal the repeat random scores within 1e-6"
        <| fun () ->
            let random =
                runDemo ("input repeat random 20 x2 batch 3 seed 5\nscore induction\nscore duplicate_token\n"
                         + "score prev_token\n")
            let rows = random.Input.Ids |> Array.map (fun r -> "[" + String.Join(", ", r) + "]")
            let written =
                runDemo ("input tokens [" + String.Join(", ", rows) + ("]\nscore induction\nscore duplicate_token\n"
                                                                       + "score prev_token\n"))
            for kind in [ "induction"; "duplicate_token"; "prev_token" ] do
                let a = scoreGrid kind random |> Array.concat
                let b = scoreGrid kind written |> Array.concat
                Expect.isLessThanOrEqual (Array.map2 (fun x y -> abs (x - y)) a b |> Array.max) 1e-6
                    (sprintf "%s scores" kind)
            Expect.isGreaterThan (scoreGrid "induction" written).[1].[1] 0.5
                "the demo model's induction head shows on the written tokens"

        testCase ("rows of different block lengths are scored apart and averaged row by row; the C# API takes such "
                  + "tokens") <| fun () ->
            use model = Lens.ModelLoader.Load "demo-attn-only-2l"
            let rowA = [| 50256L; 1200L; 1300L; 1400L; 1200L; 1300L; 1400L |]
            let rowB = [| 50256L; 1500L; 1600L; 1500L; 1600L; 1500L; 1600L |]
            let tokens (ids: int64[]) (rows: int64) : TorchSharp.torch.Tensor =
                TorchSharp.torch.tensor(ids, dimensions = ReadOnlySpan<int64>([| rows; 7L |]))
            use both = tokens (Array.append rowA rowB) 2L
            use a = tokens rowA 1L
            use b = tokens rowB 1L
            use mixed = HeadScores.Induction(model, both)
            use onlyA = HeadScores.Induction(model, a)
            use onlyB = HeadScores.Induction(model, b)
            use byLength = HeadScores.Induction(model, a, 3)
            for l in 0 .. 1 do
                for h in 0 .. 3 do
                    Expect.floatClose Accuracy.high mixed[l, h] ((onlyA[l, h] + onlyB[l, h]) / 2.0)
                        (sprintf "L%dH%d: the mean of the rows" l h)
                    Expect.equal onlyA[l, h] byLength[l, h] "a detected block of 3 is the block length 3"
            let fsharp = Lens.FSharp.Scores.inductionOn a model
            Expect.equal fsharp.[1, 1] onlyA[1, 1] "the F# API too"

        testCase "a row that is not a repeat is a located error naming the row" <| fun () ->
            let errors = checkDemo "input tokens [[1, 2, 1, 2], [1, 2, 3, 4]]\nscore induction\nscore prev_token\n"
            Expect.equal errors.Length 1 (String.concat "\n" errors)
            Expect.stringContains errors.Head ("test.lens:2:1: `score induction` needs an input whose rows are a block "
                                               + "repeated") "located at the score"
            Expect.stringContains errors.Head "row 2 of the input is not a block of tokens repeated" "names the row"
    ]

let provenanceTests =
    testList "provenance" [
        testCase ("a record names the Lens commit, TorchSharp, libtorch, threads, CPU, OS and the sha256 of every file "
                  + "read") <| fun () ->
            let file =
                experiment "provenance.lens"
                    ("model " + tinyDir + "\ninput tokens [1, 2, 3]\ncache save "
                        + Path.Combine(scratch.Force(), "prov.safetensors") + "\ncache load prov.safetensors\n")
            let _, json = runJson file []
            Expect.equal (Schema.validate json) [] "valid"
            use doc = JsonDocument.Parse json
            let p = doc.RootElement.GetProperty "provenance"
            let commit = p.GetProperty("lens_commit").GetString()
            let git =
                try Some (run "git" [ "rev-parse"; "--is-inside-work-tree" ] repoRoot [] (TimeSpan.FromSeconds 30.0))
                with _ -> None
            match git with
            | Some g when g.ExitCode = 0 ->
                Expect.isMatch commit "^[0-9a-f]{12}$" "a 12-digit commit"
                Expect.equal
                    (run "git" [ "cat-file"; "-e"; commit + "^{commit}" ] repoRoot []
                        (TimeSpan.FromSeconds 30.0)).ExitCode 0 "a commit of this repository"
            | _ -> Expect.equal commit "unknown" "no git: unknown"
            Expect.equal (p.GetProperty("libtorch_version").GetString()) TorchSharp.torch.__version__ "libtorch"
            Expect.isGreaterThanOrEqual (p.GetProperty("threads").GetInt32()) 1 "threads"
            Expect.isNonEmpty (p.GetProperty("cpu").GetString()) "cpu"
            let files =
                [ for f in p.GetProperty("files").EnumerateArray() ->
                    f.GetProperty("role").GetString(), f.GetProperty("path").GetString(),
                        f.GetProperty("sha256").GetString() ]
            let sha (path: string) = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes path))
            for name in [ "config.json"; "model.safetensors" ] do
                let path = Path.Combine(tinyDir, name)
                Expect.contains files ("model", Path.GetFullPath path, sha path) (sprintf "the model's %s" name)
            let cache = Path.Combine(scratch.Force(), "prov.safetensors")
            Expect.contains files ("cache", cache, sha cache) "the loaded cache"
            let prompts = experiment "prompts.txt" "one two\nthree\n"
            let _, withFile = runJson (experiment "input-file.lens" "input file prompts.txt\nloss\n") []
            use fileDoc = JsonDocument.Parse withFile
            let read =
                [ for f in fileDoc.RootElement.GetProperty("provenance").GetProperty("files").EnumerateArray() ->
                    f.GetProperty("role").GetString(), f.GetProperty("path").GetString(),
                        f.GetProperty("sha256").GetString() ]
            Expect.contains read ("input", prompts, sha prompts) "the input file"
    ]

[<Tests>]
let tests =
    testList "expect"
        [ expectTests; printedValueTests; testCommandTests; diffTests; repeatedInputTests; provenanceTests ]
