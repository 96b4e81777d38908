/// SAEs spliced into the tl-oracle gpt2like model (HookedSAETransformer's semantics) against the
/// SAELens 6.18 fixtures: logits and per-token losses of every run, the SAE hook points in the cache, steering.
module Lens.Tests.SaeSplicingTests

open Expecto
open TorchSharp
open Lens
open Lens.Sae
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.SaeLoadingTests

let zeroAblation = HookFunction(fun x _ -> torch.zeros_like x)

let setFeature (feature: int64) (value: float32) =
    HookFunction(fun acts _ -> (use column = acts.select(-1, feature) in column.fill_(value) |> ignore); null)

[<Tests>]
let splicingTests =
    testList "sae splicing" [
        for name in saeFixtures do
            testCase
                (sprintf
                    "%s: clean, spliced, error-term, zero-ablated and steered runs match HookedSAETransformer within \
                     1e-5" name) <| fun () ->
                let e = expectedOf name
                use model = (Oracle "gpt2like").Model()
                use sae = SparseAutoencoder.Load(saeDir name)
                let tokens = e.["tokens"]
                let check (run: string) (output: ModelOutput) =
                    use _ = output
                    expectRelative 1e-5 (sprintf "%s logits_%s" name run) output.Logits e.["logits_" + run]
                    expectRelative 1e-5 (sprintf "%s loss_per_token_%s" name run) output.Loss
                        e.["loss_per_token_" + run]
                check "clean" (model.Forward(tokens, ReturnType.Both, true))
                check "spliced" (model.RunWithSaes(tokens, [ sae ], false, ReturnType.Both, true))
                check "spliced_error_term" (model.RunWithSaes(tokens, [ sae ], true, ReturnType.Both, true))
                check "zero_ablation"
                    (model.RunWithHooks(tokens, [ HookSpec.Named(sae.HookName, zeroAblation) ], ReturnType.Both, true))
                let feature = e.["steer.feature"].item<int64>()
                for errorTerm in [ true; false ] do
                    for label, value in [ "ablate", 0.0f; "set10", 10.0f ] do
                        use _ = model.AttachSae(sae, errorTerm)
                        use _ = model.Hooks(struct (sae.HookName + ".hook_sae_acts_post", setFeature feature value))
                        check (sprintf "steer_%s_%s" label (if errorTerm then "error_term" else "no_error_term"))
                            (model.Forward(tokens, ReturnType.Both, true))
                disposeAll e

            testCase (sprintf "%s: run_with_cache_with_saes caches the six SAE hook points by name" name) <| fun () ->
                let e = expectedOf name
                use model = (Oracle "gpt2like").Model()
                use sae = SparseAutoencoder.Load(saeDir name)
                use run = model.RunWithCacheWithSaes(e.["tokens"], [ sae ], true)
                let saeKeys = run.Cache.Keys |> Seq.filter (fun k -> k.Contains ".hook_sae_") |> Seq.sort |> List.ofSeq
                Expect.equal saeKeys [ for s in SparseAutoencoder.HookSuffixes |> Seq.sort -> sae.HookName + "." + s ]
                    "the SAE's hook names"
                expectRelative 1e-5 (name + " cache hook_sae_acts_post")
                    run.Cache.[sae.HookName + ".hook_sae_acts_post"] e.["feature_acts"]
                expectRelative 1e-5 (name + " cache hook_sae_error") run.Cache.[sae.HookName + ".hook_sae_error"]
                    e.["sae_error"]
                expectRelative 1e-5 (name + " cache hook_sae_output") run.Cache.[sae.HookName + ".hook_sae_output"]
                    e.["sae_output_with_error"]
                Expect.isFalse (model.HookDict.ContainsKey(sae.HookName + ".hook_sae_input")) "detached after the run"
                disposeAll e

        testCase "several SAEs at once; attach/detach is scoped; a second SAE on one hook point is refused" <| fun () ->
            let e = expectedOf "relu-resid"
            use model = (Oracle "gpt2like").Model()
            use resid = SparseAutoencoder.Load(saeDir "relu-resid")
            use z = SparseAutoencoder.Load(saeDir "relu-z")
            use topk = SparseAutoencoder.Load(saeDir "topk-resid")
            let tokens = e.["tokens"]
            use clean = model.Forward tokens
            do
                use _ = model.Saes([ resid; z ], useErrorTerm = true)
                use both = model.Forward tokens
                expectRelative 1e-5 "two SAEs with the error term leave the logits" both clean
                Expect.throwsT<SaeException> (fun () -> model.AttachSae(topk) |> ignore) |> ignore
                Expect.isTrue (model.HookDict.ContainsKey "blocks.1.attn.hook_z.hook_sae_acts_post") "registered"
            use after = model.Forward tokens
            Expect.equal (maxAbsDiff after clean) 0.0 "detached: the plain model again"
            Expect.isFalse (model.HookDict.ContainsKey "blocks.0.hook_resid_post.hook_sae_input") "unregistered"
            disposeAll e
    ]
