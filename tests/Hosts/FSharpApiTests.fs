/// The F# face (src/Scripts) called from F#, checked against the TransformerLens oracle.
module Lens.Tests.FSharpApiTests

open Expecto
open TorchSharp
open Lens
open Lens.FSharp
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

let private scalar (t: torch.Tensor) = t.to_type(torch.float64).item<float>()

[<Tests>]
let tests =
    testList "F# API" [
        testCase "Model.runWithCache, Cache.get and Hook.replace give TransformerLens's numbers" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            let expected = o.Expected "expected.safetensors"
            let analyses = o.Expected "analyses.safetensors"
            let tokens = expected.["tokens"]
            let logits, cache = model |> Model.runWithCache tokens
            use _ = cache
            expectClose 1e-5 "logits" logits expected.["logits"]
            expectClose 1e-5 "pattern 1" (cache |> Cache.get "pattern" 1) expected.["blocks.1.attn.hook_pattern"]
            let zeroHead2 (z: torch.Tensor) =
                let z2 = z.clone()
                z2.index_put_(torch.tensor 0.0f, torch.TensorIndex.Ellipsis, torch.TensorIndex.Single 2L,
                              torch.TensorIndex.Slice()) |> ignore
                z2
            use ablated = model |> Model.runWithHooks [ Hook.replace "z1" zeroHead2 ] tokens
            expectClose 1e-5 "ablation through Hook.replace" ablated analyses.["ablation.logits"]
            disposeAll expected; disposeAll analyses

        testCase "Scores.detect, Circuits.composition and Ablate.loss equal the oracle" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            let expected = o.Expected "expected.safetensors"
            let analyses = o.Expected "analyses.safetensors"
            let induction = model |> Scores.detect "induction_head" analyses.["head_detection.tokens"]
            use expectedInduction = analyses.["head_detection.induction_head"].to_type(torch.float64)
            for l in 0 .. 1 do
                for h in 0 .. 3 do
                    Expect.floatClose { absolute = 1e-5; relative = 1e-5 } induction.[l, h]
                        (expectedInduction.[int64 l, int64 h].item<float>()) "detect_head"
            let k = model |> Circuits.composition "K"
            use expectedK = analyses.["composition.K"].to_type(torch.float64)
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } k.[0, 1, 1, 2]
                (expectedK.[0L, 1L, 1L, 2L].item<float>()) "K composition"
            let loss = model |> Ablate.loss [ Ablate.zero (Ablate.head 1 2) ] expected.["tokens"]
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } loss (scalar analyses.["ablation.loss_mean"])
                "ablated loss"
            let ranked = Scores.ranked induction
            Expect.equal ranked.Length 8 "every head ranked"
            Expect.isGreaterThanOrEqual ranked.[0].Score ranked.[7].Score "best first"
            disposeAll expected; disposeAll analyses
    ]
