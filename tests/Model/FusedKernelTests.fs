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
    let cfg =
        HookedTransformerConfig.FromJson(oracle.Manifest.GetProperty("processed_config").GetRawText(), "processed")
    cfg.InitWeights <- false
    let model = new HookedTransformer(cfg)
    use f = SafetensorsFile.Open(Path.Combine(oracle.Dir, "processed_weights.safetensors"))
    model.LoadStateDict(f.Names |> Seq.map (fun n -> System.Collections.Generic.KeyValuePair(n, f.Load n)),
                        "processed weights")
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

        testCase ("a hook on hook_pattern (explicit attention) and on ln hook_scale (explicit LayerNorm) leaves the "
                  + "logits as fused") <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            let tokens = expected.["tokens"]
            use fusedLogits = model.Forward(tokens)
            use hooked =
                model.RunWithHooks(tokens, struct ("blocks.0.attn.hook_pattern", noOp),
                                   struct ("blocks.1.ln1.hook_scale", noOp))
            expectClose 1e-5 "logits, explicit vs fused" hooked fusedLogits
            disposeAll expected

        testCase "zero-ablating a head through hook_z (an in-place edit of the fused output) matches TransformerLens"
        <| fun () ->
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

        testCase ("greedy generation with the key-value cache (one fused query per step) gives TransformerLens's "
                  + "tokens and logits") <| fun () ->
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

/// W_Q, W_K, W_V and their biases are views into one fused matrix per layer (QkvStorage).
let private sharedQkv =
    let oracle = Oracle "gpt2like"
    testList "fused QKV storage" [
        testCase "an in-place edit of W_V and b_V is seen by the forward (as zeroing hook_v would be)" <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            let tokens = expected.["tokens"]
            use model = oracle.Model()
            let zeroV = HookFunction(fun v _ -> v.zero_() |> ignore; null)
            use viaHook = model.RunWithHooks(tokens, struct ("blocks.0.attn.hook_v", zeroV))
            let attn = model.blocks.[0].attn
            use _ = torch.no_grad()
            attn.W_V.zero_() |> ignore
            attn.b_V.zero_() |> ignore
            use viaWeights = model.Forward(tokens)
            expectClose 1e-6 "logits" viaWeights viaHook
            disposeAll expected

        testCase "the parameters keep TransformerLens's names and shapes and save/load round-trips" <| fun () ->
            use model = oracle.Model()
            let attn = model.blocks.[1].attn
            Expect.sequenceEqual attn.W_Q.shape [| 4L; 64L; 16L |] "W_Q shape"
            Expect.sequenceEqual attn.b_K.shape [| 4L; 16L |] "b_K shape"
            let dir = Path.Combine(Path.GetTempPath(), sprintf "lens-qkv-%d" (System.Environment.ProcessId))
            try
                model.Save dir
                use loaded = HookedTransformer.Load dir
                let loadedByName = loaded.Parameters() |> Seq.map (fun struct (n, p) -> n, p) |> dict
                for struct (name, p) in model.Parameters() do
                    expectClose 0.0 name loadedByName.[name] p
            finally Directory.Delete(dir, true)

        testCase "after conversion to float64 (parameters replaced) the forward projects head by head and still matches"
        <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            model.To(dtype = torch.float64) |> ignore
            use logits = model.Forward(expected.["tokens"])
            Expect.equal logits.dtype torch.float64 "float64 logits"
            expectClose 1e-5 "float64 logits" logits expected.["logits"]
            disposeAll expected

        testCase "with gradients on, the loss's gradient reaches W_Q, W_K and W_V themselves" <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            model.RequiresGrad true |> ignore
            use loss = model.Loss(expected.["tokens"])
            loss.backward()
            let attn = model.blocks.[0].attn
            for (name, p) in [ "W_Q", attn.W_Q; "W_K", attn.W_K; "W_V", attn.W_V ] do
                Expect.isNotNull p.grad (sprintf "%s has a gradient" name)
                use n = p.grad.abs().sum()
                Expect.isGreaterThan (n.item<float32>()) 0.0f (sprintf "%s's gradient is not zero" name)
            disposeAll expected
    ]

[<Tests>]
let tests =
    testList "fused kernels" [
        fused "gpt2like"
        fused "attnonly"
        sharedQkv
    ]
