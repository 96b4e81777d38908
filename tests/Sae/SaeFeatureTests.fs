/// Feature work on SAEs (activations per token, top features, ablation/steering hooks, logit weights)
/// and `lens cache --sae`, against the SAELens 6.18 fixtures.
module Lens.Tests.SaeFeatureTests

open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Sae
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.SaeLoadingTests

let tokensJson (tokens: torch.Tensor) =
    let rows =
        [ for b in 0L .. tokens.shape.[0] - 1L ->
            [ for p in 0L .. tokens.shape.[1] - 1L -> tokens.[b, p].item<int64>() ] ]
    "[" + (rows |> List.map (fun r -> "[" + (r |> List.map string |> String.concat ",") + "]") |> String.concat ",")
        + "]"

let private scratch = scratchFolder "lens-sae-feature-tests"

/// A fresh folder, removed when the test process exits.
let tempFolder () = freshFolderIn scratch "sae"

[<Tests>]
let featureTests =
    testList "sae features" [
        for name in [ "relu-resid"; "topk-resid"; "relu-z" ] do
            testCase (sprintf "%s: feature activations per token and the top features at a position" name) <| fun () ->
                let e = expectedOf name
                use model = (Oracle "gpt2like").Model()
                use sae = SparseAutoencoder.Load(saeDir name)
                use acts = model.Activations(sae, e.["tokens"])
                expectRelative 1e-5 (name + " feature activations") acts e.["feature_acts"]
                use last = acts.[0L, -1L]
                let top = SaeFeatures.Top(last, 5)
                Expect.equal top.[0].Feature (int (e.["steer.feature"].item<int64>()))
                    "the most active feature at the last position is the fixture's steering feature"
                Expect.floatClose Accuracy.medium top.[0].Value (e.["metric.steer.feature_value_before"].item<float>())
                    "its value"
                Expect.isTrue (top |> Seq.pairwise |> Seq.forall (fun (a, b) -> a.Value >= b.Value)) "largest first"
                disposeAll e

        testCase ("set and add on hook_sae_acts_post steer as SAELens; add with the error term equals adding "
                  + "v·W_dec[f] to the activation") <| fun () ->
            let e = expectedOf "relu-resid"
            use model = (Oracle "gpt2like").Model()
            use sae = SparseAutoencoder.Load(saeDir "relu-resid")
            let tokens = e.["tokens"]
            let feature = int (e.["steer.feature"].item<int64>())
            do
                use _ = model.AttachSae(sae, useErrorTerm = true)
                use out =
                    model.RunWithHooks(tokens, [ SaeFeatures.SetFeature(sae, feature, 10.0) ], ReturnType.Both, true)
                expectRelative 1e-5 "set 10 with the error term" out.Logits e.["logits_steer_set10_error_term"]
            do
                use _ = model.AttachSae(sae, useErrorTerm = false)
                use out =
                    model.RunWithHooks(tokens, [ SaeFeatures.SetFeature(sae, feature, 0.0) ], ReturnType.Both, true)
                expectRelative 1e-5 "ablate without the error term" out.Logits e.["logits_steer_ablate_no_error_term"]
            use steered =
                use _ = model.AttachSae(sae, useErrorTerm = true)
                model.RunWithHooks(tokens, [ SaeFeatures.AddToFeature(sae, feature, 3.0) ], ReturnType.Logits)
            use direction = sae.W_dec.[int64 feature] * 3.0f
            use added =
                model.RunWithHooks(tokens, [ HookSpec.Named(sae.HookName, HookFunction(fun x _ -> x + direction)) ],
                                   ReturnType.Logits)
            expectRelative 1e-5 "add 3 to the feature = add 3·W_dec[f] to the residual" steered.Logits added.Logits
            Expect.throwsT<SaeException> (fun () -> SaeFeatures.SetFeature(sae, 256, 1.0) |> ignore)
                "feature out of range"
            disposeAll e

        testCase "decoder directions' logit weights: W_dec[f] @ W_U, through W_O for hook_z" <| fun () ->
            use model = (Oracle "gpt2like").Model()
            use resid = SparseAutoencoder.Load(saeDir "relu-resid")
            use z = SparseAutoencoder.Load(saeDir "relu-z")
            use w = model.LogitWeights(resid, 7)
            use manual = resid.W_dec.[7L].matmul(model.W_U)
            expectRelative 1e-6 "resid logit weights" w manual
            use wz = model.LogitWeights(z, 3)
            use wO = model.blocks.[1].attn.W_O
            use throughHeads = z.W_dec.[3L].reshape(4L, 16L).unsqueeze(1).bmm(wO).sum(0L).squeeze(0L).matmul(model.W_U)
            expectRelative 1e-5 "hook_z logit weights through W_O" wz throughHeads
            let struct (promoted, suppressed) = model.TopLogitTokens(resid, 7, 3)
            Expect.floatClose Accuracy.high promoted.[0].Weight (w.max().item<float32>() |> float)
                "the top promoted token has the largest weight"
            Expect.floatClose Accuracy.high suppressed.[0].Weight (w.min().item<float32>() |> float)
                "the top suppressed token has the smallest weight"
    ]

[<Tests>]
let cacheCommandTests =
    testList "lens cache --sae" [
        testCase "writes the spliced run's logits and the SAE hook points, equal to HookedSAETransformer" <| fun () ->
            let resid = expectedOf "relu-resid"
            let z = expectedOf "relu-z"
            use model = (Oracle "gpt2like").Model()
            let dir = tempFolder ()
            model.Save dir
            let out = Path.Combine(tempFolder (), "acts.safetensors")
            let r =
                Processes.lens [ "cache"; dir; "--tokens"; tokensJson resid.["tokens"]; "--sae"; saeDir "relu-resid";
                                 "--out"; out ]
            Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
            Expect.stringContains r.Stdout "blocks.0.hook_resid_post.hook_sae_acts_post"
                "the table lists SAE hook points"
            do
                use written = SafetensorsFile.Open out
                let check (key: string) (expectedKey: string) =
                    use t = written.Load key
                    expectRelative 1e-5 ("lens cache --sae relu-resid " + key) t resid.[expectedKey]
                check "logits" "logits_spliced"
                check "blocks.0.hook_resid_post.hook_sae_input" "hook_sae_input"
                check "blocks.0.hook_resid_post.hook_sae_acts_pre" "feature_acts_pre"
                check "blocks.0.hook_resid_post.hook_sae_acts_post" "feature_acts"
                check "blocks.0.hook_resid_post.hook_sae_recons" "hook_sae_recons"
                check "blocks.0.hook_resid_post.hook_sae_output" "reconstruction"
                Expect.isTrue (written.Contains "blocks.1.attn.hook_pattern") "the model's own hooks are there too"
            let out2 = Path.Combine(tempFolder (), "acts.safetensors")
            let r2 =
                Processes.lens [ "cache"; dir; "--tokens"; tokensJson z.["tokens"]; "--sae"; saeDir "relu-z"; "--sae";
                                 Path.GetDirectoryName(gemmaScopeParams "gemma-scope-layout")
                                     + "@blocks.0.hook_resid_post"; "--sae-error-term"; "--out"; out2 ]
            Expect.equal r2.ExitCode 0 (r2.Stdout + r2.Stderr)
            do
                use written = SafetensorsFile.Open out2
                let check (key: string) (expected: torch.Tensor) =
                    use t = written.Load key
                    expectRelative 1e-5 ("lens cache --sae relu-z --sae gemma-scope --sae-error-term " + key) t expected
                check "logits" z.["logits_clean"]
                check "blocks.1.attn.hook_z.hook_sae_error" z.["sae_error"]
                check "blocks.1.attn.hook_z.hook_sae_output" z.["sae_output_with_error"]
                check "blocks.1.attn.hook_z.hook_sae_acts_post" z.["feature_acts"]
                check "blocks.0.hook_resid_post.hook_sae_input" resid.["sae_input"]
            disposeAll resid
            disposeAll z

        testCase "a bad SAE gives a clear message and exit code 1" <| fun () ->
            use model = (Oracle "gpt2like").Model()
            let dir = tempFolder ()
            model.Save dir
            let r =
                Processes.lens [ "cache"; dir; "--tokens"; "[1,2,3]"; "--sae"; "/nonexistent/sae"; "--out";
                                 Path.Combine(tempFolder (), "x.safetensors") ]
            Expect.equal r.ExitCode 1 (r.Stdout + r.Stderr)
            Expect.stringContains r.Stderr "SAE not found" "names the problem"
            Expect.isFalse (r.Stderr.Contains "   at ") "no stack trace"
            let r2 =
                Processes.lens [ "cache"; dir; "--tokens"; "[1,2,3]"; "--sae";
                                 Path.GetDirectoryName(gemmaScopeParams "gemma-scope-layout")
                                     + "@blocks.9.hook_resid_post"; "--out";
                                 Path.Combine(tempFolder (), "x.safetensors") ]
            Expect.equal r2.ExitCode 1 (r2.Stdout + r2.Stderr)
            Expect.stringContains r2.Stderr "blocks.9.hook_resid_post" "names the unknown hook"
    ]

[<Tests>]
let fsharpTests =
    testList "sae F#" [
        testCase "Sae module: load, run with SAEs, feature activations, top features, steering, metrics" <| fun () ->
            let e = expectedOf "relu-resid"
            use model = (Oracle "gpt2like").Model()
            use sae = Lens.FSharp.Sae.load (saeDir "relu-resid")
            let tokens = e.["tokens"]
            use logits = model |> Lens.FSharp.Sae.runWithSaes [ sae ] false tokens
            expectRelative 1e-5 "F# runWithSaes" logits e.["logits_spliced"]
            use acts = model |> Lens.FSharp.Sae.featureActs sae tokens
            use last = acts.[0L, -1L]
            let feature, _ = Lens.FSharp.Sae.topFeatures 3 last |> List.head
            Expect.equal (int64 feature) (e.["steer.feature"].item<int64>()) "top feature"
            use steered =
                use _ = model |> Lens.FSharp.Sae.attach true sae
                model |> Lens.FSharp.Model.runWithHooks [ Lens.FSharp.Sae.setFeature sae feature 10.0 ] tokens
            expectRelative 1e-5 "F# steering" steered e.["logits_steer_set10_error_term"]
            let m = model |> Lens.FSharp.Sae.metrics sae [ tokens ]
            Expect.floatClose Accuracy.high m.L0 (e.["metric.l0"].item<float>()) "l0"
            disposeAll e
    ]
