/// Sparse autoencoders in the experiment language (`sae load`, `features top|logits`, `ablate feature`,
/// `steer feature`, `sae metrics` and their `expect` targets), through the language's text on the
/// tl-oracle gpt2like model, against the SAELens 6.18 fixtures (../shared/fixtures/sae).
module Lens.Tests.SaeDslTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.Sae
open Lens.Dsl
open Lens.Dsl.Runtime
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.SaeLoadingTests
open Lens.Tests.SaeMetricsTests
open Lens.Tests.CliRunTests

/// The tl-oracle gpt2like model as a checkpoint folder that `model PATH` loads (config.json + model.safetensors).
let gpt2likeDir =
    lazy
        let dir = Path.Combine(scratch.Force(), "gpt2like-checkpoint")
        use model = (Oracle "gpt2like").Model()
        model.Save dir
        dir

let tokensText (tokens: torch.Tensor) =
    let rows =
        [ for b in 0L .. tokens.shape.[0] - 1L ->
            [ for p in 0L .. tokens.shape.[1] - 1L -> string (tokens.[b, p].item<int64>()) ] ]
    "[" + (rows |> List.map (fun r -> "[" + String.Join(", ", r) + "]") |> String.concat ", ") + "]"

/// Runs experiment text in-process on the gpt2like model with the fixture's tokens as the input.
let runOn (e: Collections.Generic.Dictionary<string, torch.Tensor>) (body: string) =
    let text = sprintf "model %s\ninput tokens %s\n%s" gpt2likeDir.Value (tokensText e.["tokens"]) body
    use env =
        new ExperimentEnvironment(FileName = "sae.lens", SourceText = text,
                                  ReadDirectory = requireShared "fixtures/sae")
    let state = Pipeline.Parse(text, "sae.lens").Execute env
    state

let checkOn (body: string) =
    let text = sprintf "model %s\ninput tokens [[1, 2, 3, 4]]\n%s" gpt2likeDir.Value body
    use env =
        new ExperimentEnvironment(FileName = "sae.lens", SourceText = text,
                                  ReadDirectory = requireShared "fixtures/sae")
    Pipeline.Parse(text, "sae.lens").Check(ExperimentState.Start env) |> Seq.map string |> List.ofSeq

let tableOf (prefix: string) (state: ExperimentState) =
    match (state.Results |> Seq.filter (fun r -> r.Text.StartsWith prefix) |> Seq.last).Value with
    | :? TableValue as t -> t
    | other -> failtestf "%s gave %s" prefix other.Kind

/// The last-position logits [batch, d_vocab] of every `logits` statement, in order.
let lastLogits (state: ExperimentState) =
    [ for r in state.Results do
        match r.Value with
        | :? LogitsValue as v ->
            yield torch.tensor(Array.concat v.Last,
                               dimensions = ReadOnlySpan<int64>([| int64 v.Last.Length; int64 v.Last.[0].Length |]))
        | _ -> () ]

let checks (state: ExperimentState) =
    state.Results |> Seq.choose (fun r -> match r.Value with :? ExpectationValue as e -> Some e | _ -> None)
        |> List.ofSeq

[<Tests>]
let saeDslTests =
    testList "sae in the language" [
        for name in [ "relu-resid"; "topk-resid"; "relu-z" ] do
            testCase
                (sprintf
                    "%s: spliced logits with and without the error term, feature ablation and steering match SAELens \
                     within 1e-5" name) <| fun () ->
                let e = expectedOf name
                let feature = e.["steer.feature"].item<int64>()
                let state =
                    runOn e (sprintf "logits\nablate L0H0 {\n  sae load %s\n  logits\n  ablate feature %d {\n    \
                                      logits\n  }\n  steer feature %d to 10\n  logits\n}\nsae load %s error_term\n\
                                      logits\nsteer feature %d to 10\nlogits\nablate feature %d\nlogits\n"
                                 name feature feature name feature feature)
                let logits = lastLogits state
                Expect.equal logits.Length 7 "seven logits statements"
                let last (key: string) = e.[key].select(1L, -1L)
                // The first block also ablates L0H0 (zero): a different model, so only its SAE statements are compared
                // below.
                expectRelative 1e-5 (name + " clean (before any SAE)") logits.[0] (last "logits_clean")
                expectRelative 1e-5 (name + " spliced with the error term") logits.[4]
                    (last "logits_spliced_error_term")
                expectRelative 1e-5 (name + " set to 10 with the error term") logits.[5]
                    (last "logits_steer_set10_error_term")
                expectRelative 1e-5 (name + " set to 10, then ablated, with the error term") logits.[6]
                    (last "logits_steer_ablate_error_term")
                for t in logits do t.Dispose()
                let interventions = (state.Results |> Seq.last).Interventions |> List.ofSeq
                Expect.equal interventions
                    [ sprintf "sae load %s error_term" name; "steer feature " + string feature + " to 10"; sprintf
                        "ablate feature %d" feature ] "the record lists the SAE and the edits in force"
                disposeAll e

            testCase
                (sprintf
                    "%s: spliced without the error term, ablate feature in a block, and the SAE ends with its block"
                        name) <| fun () ->
                let e = expectedOf name
                let feature = e.["steer.feature"].item<int64>()
                let state =
                    runOn e
                        (sprintf
                            "sae load %s\nlogits\nablate feature %d {\n  logits\n}\nsteer feature %d to 10\nlogits\n"
                                name feature feature)
                let logits = lastLogits state
                expectRelative 1e-5 (name + " spliced") logits.[0] (e.["logits_spliced"].select(1L, -1L))
                expectRelative 1e-5 (name + " feature ablated, no error term") logits.[1]
                    (e.["logits_steer_ablate_no_error_term"].select(1L, -1L))
                expectRelative 1e-5 (name + " feature set to 10, no error term") logits.[2]
                    (e.["logits_steer_set10_no_error_term"].select(1L, -1L))
                for t in logits do t.Dispose()
                disposeAll e

        testCase ("Gemma Scope's params.npz layout loads with `at HOOK` and splices as jumprelu-resid (its weights) "
                  + "does in SAELens") <| fun () ->
            let e = expectedOf "jumprelu-resid"
            let feature = e.["steer.feature"].item<int64>()
            let folder = "gemma-scope-layout/layer_0/width_384/average_l0_40"
            let state =
                runOn e
                    (sprintf "sae load %s at blocks.0.hook_resid_post\nlogits\nsteer feature %d to 10\nlogits\n" folder
                        feature)
            let logits = lastLogits state
            expectRelative 1e-5 "gemma-scope layout spliced" logits.[0] (e.["logits_spliced"].select(1L, -1L))
            expectRelative 1e-5 "gemma-scope layout, feature set to 10" logits.[1]
                (e.["logits_steer_set10_no_error_term"].select(1L, -1L))
            for t in logits do t.Dispose()
            let errors = checkOn (sprintf "sae load %s\n" folder)
            Expect.equal errors.Length 1 (String.concat "\n" errors)
            Expect.stringContains errors.Head "sae.lens:3:10: cannot load the SAE"
                "without `at`, a folder outside a gemma-scope repository has no hook: a located error"
            disposeAll e

        testCase ("relu-resid: features top, features logits and sae metrics, and their expect targets, equal the "
                  + "fixture") <| fun () ->
            let e = expectedOf "relu-resid"
            let feature = e.["steer.feature"].item<int64>()
            let state =
                runOn e (("sae load relu-resid\nfeatures top 4\n"
                          + "expect features top pos 11 rank 1 feature == 201 within 0\n"
                          + "expect features top row 1 pos 3 rank 2 activation > 0\n")
                         + ("features logits 201 top 3\nexpect features logits promoted 1 > 0\n"
                            + "expect features logits suppressed 1 id >= 0\n")
                         + ("sae metrics\nexpect sae metrics l0 > 30\n"
                            + "expect sae metrics explained_variance_centred < 0.5\n"
                            + "expect sae metrics dead_features >= 0\n"))
            let top = tableOf "features top" state
            Expect.equal top.Columns [| "row"; "pos"; "token"; "rank"; "feature"; "activation" |] "the columns"
            use acts = e.["feature_acts"]
            for row in top.Rows do
                let r, p, f = row.[0] :?> int, row.[1] :?> int, row.[4] :?> int
                let expected = acts.[int64 r, int64 p, int64 f].item<float32>() |> float
                Expect.isLessThanOrEqual (abs ((row.[5] :?> float) - expected)) (1e-5 * max 1.0 (abs expected))
                    (sprintf "row %d pos %d feature %d" r p f)
            // Each position lists its 4 largest activations (or fewer, when fewer fire), in order.
            for r in 0 .. 1 do
                for p in 0 .. 11 do
                    use fired = acts.[int64 r, int64 p].gt(torch.tensor 0.0f)
                    let listed = top.Rows |> Array.filter (fun x -> x.[0] :?> int = r && x.[1] :?> int = p)
                    Expect.equal listed.Length (min 4 (int (fired.sum().item<int64>())))
                        (sprintf "row %d pos %d: how many are listed" r p)
                    use largest = acts.[int64 r, int64 p].max()
                    Expect.floatClose Accuracy.medium (listed.[0].[5] :?> float) (float (largest.item<float32>()))
                        "the first is the largest"
            let results = checks state
            for c in results do Expect.isTrue c.Passed (sprintf "%s = %g" c.Target c.Actual)
            Expect.equal (results |> List.find (fun c -> c.Target = "features top pos 11 rank 1 feature")).Actual
                (float feature) "the fixture's steering feature (the most active at the last position)"
            Expect.floatClose Accuracy.medium
                (results |> List.find (fun c -> c.Target = "features top row 1 pos 3 rank 2 activation")).Actual
                ((top.Rows
                    |> Array.find (fun x -> x.[0] :?> int = 1 && x.[1] :?> int = 3 && x.[3] :?> int = 2)).[5] :?> float)
                    "a listed cell"
            // Direct logit attribution of the decoder direction, against W_dec[f] @ W_U computed here.
            use model = (Oracle "gpt2like").Model()
            use sae = SparseAutoencoder.Load(saeDir "relu-resid")
            use weights = sae.W_dec.[201L].matmul(model.W_U).to_type(torch.float64)
            let logitsTable = tableOf "features logits" state
            let promoted = logitsTable.Rows |> Array.filter (fun x -> x.[0] :?> string = "promoted")
            let suppressed = logitsTable.Rows |> Array.filter (fun x -> x.[0] :?> string = "suppressed")
            Expect.equal promoted.Length 3 "top 3 promoted"
            let struct (sortedValues, sortedIndices) = weights.sort(descending = true)
            for i in 0 .. 2 do
                Expect.isLessThanOrEqual (abs ((promoted.[i].[4] :?> float) - sortedValues.[int64 i].item<float>()))
                    1e-5 (sprintf "promoted %d" (i + 1))
                Expect.equal (promoted.[i].[3] :?> int64) (sortedIndices.[int64 i].item<int64>())
                    (sprintf "promoted %d's token" (i + 1))
            Expect.isLessThanOrEqual (abs ((suppressed.[0].[4] :?> float) - weights.min().item<float>())) 1e-5
                "the most suppressed"
            // sae metrics: SAELens's run_evals values (the fixture's metric.*), within 1e-5.
            let metrics = tableOf "sae metrics" state
            let metric (n: string) = (metrics.Rows |> Array.find (fun x -> x.[0] :?> string = n)).[1] :?> float
            let reference (key: string) = e.["metric." + key].item<float>()
            for dsl, key in
                [ "l0", "l0"; "l1", "l1"; "mse", "mse"; "explained_variance", "explained_variance";
                  "explained_variance_legacy", "explained_variance_legacy"
                  "cossim", "cossim"; "l2_norm_in", "l2_norm_in"; "l2_norm_out", "l2_norm_out"; "l2_ratio", "l2_ratio"
                  "relative_reconstruction_bias", "relative_reconstruction_bias"; "ce_loss_with_sae", "ce_loss_with_sae"
                  "ce_loss_without_sae", "ce_loss_without_sae"; "ce_loss_with_ablation",
                      "ce_loss_with_ablation"; "kl_div_with_sae", "kl_div_with_sae"
                  "kl_div_with_ablation", "kl_div_with_ablation"; "kl_div_score",
                      "kl_div_score"; "explained_variance_centred", "textbook.explained_variance"
                  "mse_loss", "trainer.mse_loss"; "firing_fraction", "firing_fraction" ] do
                expectMetric 1e-5 ("sae metrics " + dsl) (metric dsl) (reference key)
            // The CE-loss score's denominator is tiny on this random model (SaeMetricsTests explains its 5e-5): the
            // language gives the API's number.
            use loaded = ModelLoader.Load gpt2likeDir.Value
            let api = SaeEvals.Run(loaded, sae, [ e.["tokens"] ])
            Expect.equal (metric "ce_loss_score") api.CeLossScore "ce_loss_score as the API computes it"
            expectMetric 1e-4 "sae metrics ce_loss_score (relative)" (metric "ce_loss_score")
                (reference "ce_loss_score")
            Expect.equal (metric "dead_features") (float api.DeadFeatures) "dead features"
            Expect.equal (results |> List.find (fun c -> c.Target = "sae metrics l0")).Actual (metric "l0")
                "the expectation reads the table"
            disposeAll e

        testCase ("lens run --json --html: the SAE statements' records validate, expectations carry value and verdict, "
                  + "the report shows the tables") <| fun () ->
            let html = Path.Combine(scratch.Force(), "sae-report.html")
            let file =
                experiment "sae-cli.lens"
                    (sprintf
                        "model %s\ninput tokens [[1, 5, 9, 7, 5, 9, 7, 3]]\nsae load %s error_term\n\
                         features top 2 pos 7\nexpect features top rank 1 activation > 0\nfeatures logits 3 top 2\n\
                         steer feature 3 by 2\nloss\nsae load %s\n"
                        gpt2likeDir.Value (saeDir "relu-resid") (saeDir "relu-z"))
            let r, json = runJson file [ "--html"; html ]
            Expect.equal (Schema.validate json) [] "a valid record"
            let results = resultsOf json
            Expect.equal (results |> List.map (fun x -> x.GetProperty("command").GetString()))
                [ "sae"; "features"; "expect"; "features"; "loss"; "sae" ] "one result per statement that gives one"
            let check = results |> List.find (fun x -> x.GetProperty("kind").GetString() = "expectation")
            Expect.isTrue (check.GetProperty("passed").GetBoolean()) "the expectation held"
            Expect.isGreaterThan (check.GetProperty("value").GetDouble()) 0.0 "with its value"
            let loss = results |> List.find (fun x -> x.GetProperty("command").GetString() = "loss")
            let inForce = [ for i in loss.GetProperty("interventions").EnumerateArray() -> i.GetString() ]
            Expect.equal inForce [ sprintf "sae load %s error_term" (saeDir "relu-resid"); "steer feature 3 by 2" ]
                "the SAE and the edit in force"
            let page = File.ReadAllText html
            Expect.stringContains page "SAE spliced into blocks.0.hook_resid_post" "the report shows the SAE"
            Expect.stringContains page "most active features" "and the feature table"
            Expect.stringContains r.Stdout "1 expectation: all held" "says so"

        testCase ("lens check: the SAE file, its hook in the model, d_in, feature indices, and what needs an SAE, each "
                  + "at its place") <| fun () ->
            let errors =
                checkOn (("features top 3\nsae load relu-resid/cfg.json\n"
                          + ("sae load relu-resid at blocks.7.hook_resid_post\n"
                             + "sae load relu-resid at blocks.0.mlp.hook_post\n"))
                         + ("sae load relu-resid\nablate feature 256\nsteer feature 300 by 2\nfeatures logits 999\n"
                            + "ablate feature 3 mean\nsae load relu-resid\n")
                         + ("features top 2 pos 9\nsteer feature 5 by 1\nsae metrics\nexpect sae metrics l7 > 0\n"
                            + "expect features top rank 3 > 0\nfeatures top 2\n")
                         + "expect features top rank 1 > 0\n")
            Expect.equal errors.Length 14 (String.concat "\n" errors)
            Expect.stringContains errors.[0]
                "sae.lens:3:1: `features` needs an SAE: add `sae load PATH [at HOOK]` before it" "no SAE yet"
            Expect.stringContains errors.[1] "sae.lens:4:10: 'relu-resid/cfg.json' is a file, not an SAE"
                "a file that is not an SAE"
            Expect.stringContains (String.concat "\n" (checkOn "sae load no-such-sae\n"))
                "sae.lens:3:10: SAE 'no-such-sae' not found" "a missing SAE"
            Expect.stringContains errors.[2] "sae.lens:5:24: the SAE attaches at blocks.7.hook_resid_post, which model"
                "a hook the model does not have"
            Expect.stringContains errors.[3]
                "sae.lens:6:10: the SAE reads 64 values per token (d_in) but blocks.0.mlp.hook_post has 256" "d_in"
            Expect.stringContains errors.[4]
                ("sae.lens:8:16: feature 256 is out of range: the SAE at blocks.0.hook_resid_post has 256 features "
                 + "(0..255)") "ablate feature"
            Expect.stringContains errors.[5] "sae.lens:9:15: feature 300 is out of range" "steer feature"
            Expect.stringContains errors.[6] "sae.lens:10:17: feature 999 is out of range" "features logits"
            Expect.stringContains errors.[7] "sae.lens:11:18: a feature ablation sets the feature to 0 (zero)"
                "a mean feature ablation"
            Expect.stringContains errors.[8] "sae.lens:12:10: an SAE is already loaded at blocks.0.hook_resid_post"
                "one SAE per hook point"
            Expect.stringContains errors.[9] "sae.lens:13:16: position 9 is out of range: the input has 4 tokens"
                "a position out of range"
            Expect.stringContains errors.[10]
                "sae.lens:15:1: `sae metrics` measures the most recent SAE alone on the unchanged model"
                "metrics with an edit in force"
            Expect.stringContains errors.[11] "sae.lens:16:20: `expect sae metrics` reads one metric"
                "an unknown metric"
            Expect.stringContains errors.[12]
                "sae.lens:17:26: rank 3 is not listed: the features statement lists the top 2"
                "a rank beyond the listed"
            Expect.stringContains errors.[13] "sae.lens:19:21: name a position"
                "a position is needed when each position is listed"
    ]
