/// The forward's fused kernels (scaled_dot_product_attention, layer_norm, gelu) run only when no hook
/// needs the values they never materialise; these tests check that they still give TransformerLens's
/// numbers, and that hooking a point which forces the explicit path changes nothing but speed.
module Lens.Tests.FusedKernelTests

open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Components
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

let private processedModel (oracle: Oracle) =
    let cfg = HookedTransformerConfig.FromJson(oracle.Manifest.GetProperty("processed_config").GetRawText(), "processed")
    cfg.InitWeights <- false
    let model = new HookedTransformer(cfg)
    use f = SafetensorsFile.Open(Path.Combine(oracle.Dir, "processed_weights.safetensors"))
    model.LoadStateDict(f.Names |> Seq.map (fun n -> System.Collections.Generic.KeyValuePair(n, f.Load n)), "processed weights")
    model

let private noOp = HookFunction(fun _ _ -> null)

let private fused (set: string) =
    let oracle = Oracle set
    testList set [
        testCase "forward with no hooks (fused kernels) matches TransformerLens's logits within 1e-5" <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            use logits = model.Forward(expected.["tokens"])
            expectClose 1e-5 "logits" logits expected.["logits"]
            disposeAll expected

        testCase "a hook on hook_pattern (explicit attention) and on ln hook_scale (explicit LayerNorm) leaves the logits as fused" <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            let tokens = expected.["tokens"]
            use fusedLogits = model.Forward(tokens)
            use hooked = model.RunWithHooks(tokens, struct ("blocks.0.attn.hook_pattern", noOp), struct ("blocks.1.ln1.hook_scale", noOp))
            expectClose 1e-5 "logits, explicit vs fused" hooked fusedLogits
            disposeAll expected

        testCase "zero-ablating a head through hook_z (an in-place edit of the fused output) matches TransformerLens" <| fun () ->
            let analyses = oracle.Expected "analyses.safetensors"
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            let ablate = HookFunction(fun z _ -> (use head = z.select(2, 2L) in head.zero_() |> ignore); null)
            use logits = model.RunWithHooks(expected.["tokens"], struct ("blocks.1.attn.hook_z", ablate))
            expectClose 1e-5 "ablation logits" logits analyses.["ablation.logits"]
            disposeAll analyses
            disposeAll expected

        testCase "processed weights (LNPre, fused layer_norm without gain) match TransformerLens's logits" <| fun () ->
            let expected = oracle.Expected "processed_expected.safetensors"
            use model = processedModel oracle
            use logits = model.Forward(expected.["tokens"])
            expectClose 1e-5 "processed logits" logits expected.["logits"]
            disposeAll expected

        testCase "greedy generation with the key-value cache (one fused query per step) gives TransformerLens's tokens and logits" <| fun () ->
            let analyses = oracle.Expected "analyses.safetensors"
            use model = oracle.Model()
            let prompt = analyses.["generation.prompt"]
            let expectedTokens = analyses.["generation.output_tokens"]
            use cache = new KeyValueCache(model.Config.NLayers)
            let mutable input = prompt
            let steps = ResizeArray<torch.Tensor>()
            let tokens = ResizeArray<int64>(prompt.data<int64>().ToArray())
            for _ in 1 .. int (expectedTokens.shape.[1] - prompt.shape.[1]) do
                use out = model.Forward(input, ReturnType.Logits, false, cache)
                steps.Add(out.Logits.clone())
                let next = out.Logits.select(1, -1L).argmax(-1L, keepdim = true)
                tokens.Add(next.item<int64>())
                input <- next
            Expect.sequenceEqual tokens (expectedTokens.data<int64>().ToArray()) "generated tokens"
            // Each cached step's logits equal the uncached forward's at that position. (The fixture's
            // generation.logits_on_output is not used: it was taken on TransformerLens's kv-cache output, which
            // diverges from the correct greedy tokens at position 5; see the manifest's notes.)
            use all = torch.cat(steps.ToArray(), 1L)
            use full = model.Forward(expectedTokens)
            expectClose 1e-5 "cached step logits" all (full.narrow(1L, 0L, all.shape.[1]))
            for s in steps do s.Dispose()
            disposeAll analyses
    ]

[<Tests>]
let tests =
    testList "fused kernels" [
        fused "gpt2like"
        fused "attnonly"
    ]
