/// The cache's residual-stream analyses: decompositions add up, labels, layer norm on stacks, logit lens and
/// attributions.
module Lens.Tests.ResidualStreamTests

open System
open System.Collections.Generic
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

/// The gpt2like (or attnonly) oracle model, run with cache on the oracle tokens.
let withRun (set: string) (body: HookedTransformer -> torch.Tensor -> CachedRun -> unit) () =
    let oracle = Oracle set
    let expected = oracle.Expected "expected.safetensors"
    use model = oracle.Model()
    let tokens = expected.["tokens"]
    use run = model.RunWithCache(tokens)
    try body model tokens run
    finally disposeAll expected

[<Tests>]
let tests =
    testList "residual stream" [
        testCase "decompositions add up to the residual stream they decompose" <| withRun "gpt2like" (fun model _ run ->
            let cache = run.Cache
            use all = cache.DecomposeResid()
            use total = all.Stack.sum(0L)
            expectClose 1e-5 "Σ decompose_resid() = final resid_post" total cache.["resid_post", 1]
            use toLayer1 = cache.DecomposeResid(layer = Nullable 1)
            Expect.sequenceEqual toLayer1.Labels [ "embed"; "pos_embed"; "0_attn_out"; "0_mlp_out" ]
                "labels up to layer 1"
            use sum1 = toLayer1.Stack.sum(0L)
            expectClose 1e-5 "Σ decompose_resid(1) = resid_pre 1" sum1 cache.["resid_pre", 1]
            use mlpIn = cache.DecomposeResid(layer = Nullable 1, mlpInput = true)
            Expect.equal (Seq.last mlpIn.Labels) "1_attn_out" "mlp_input adds the layer's attn_out"
            use sumMid = mlpIn.Stack.sum(0L)
            expectClose 1e-5 "Σ decompose_resid(1, mlp_input) = resid_mid 1" sumMid cache.["resid_mid", 1]
            use attnOnly = cache.DecomposeResid(mode = "attn", inclEmbeds = false)
            Expect.sequenceEqual attnOnly.Labels [ "0_attn_out"; "1_attn_out" ] "mode attn without embeddings"
            use normed = cache.DecomposeResid(applyLn = true)
            use normedSum = normed.Stack.sum(0L)
            expectClose 1e-5 "Σ decompose_resid(apply_ln) = ln_final.hook_normalized (cached scale is linear)" normedSum
                cache.["ln_final.hook_normalized"]
            use normed1 = cache.DecomposeResid(layer = Nullable 1, applyLn = true)
            use normed1Sum = normed1.Stack.sum(0L)
            expectClose 1e-5 "at layer 1 the cached ln1 scale applies" normed1Sum
                cache.["blocks.1.ln1.hook_normalized"])

        testCase "accumulated residual: labels, mids, MLP input, positions, and the logit lens ends at the logits"
        <| withRun "gpt2like" (fun model _ run ->
            let cache = run.Cache
            use plain = cache.AccumulatedResid()
            Expect.sequenceEqual plain.Labels [ "0_pre"; "1_pre"; "final_post" ] "labels"
            use pre1 = plain.["1_pre"]
            expectClose 0.0 "1_pre is resid_pre 1" pre1 cache.["resid_pre", 1]
            use mids = cache.AccumulatedResid(inclMid = true)
            Expect.sequenceEqual mids.Labels [ "0_pre"; "0_mid"; "1_pre"; "1_mid"; "final_post" ] "incl_mid labels"
            use mlpIn = cache.AccumulatedResid(layer = Nullable 1, mlpInput = true)
            Expect.sequenceEqual mlpIn.Labels [ "0_pre"; "1_pre"; "1_mid" ] "mlp_input labels"
            use last = cache.AccumulatedResid(posSlice = PositionSlice.At(-1L))
            Expect.sequenceEqual last.Stack.shape [| 3L; 2L; 64L |] "a single position drops the axis"
            use lastOfAll = plain.Stack.select(2L, 11L)
            expectClose 0.0 "At(-1) is the last position" last.Stack lastOfAll
            use range = cache.AccumulatedResid(applyLn = true, posSlice = PositionSlice.Range(2L, Nullable 5L))
            use full = cache.AccumulatedResid(applyLn = true)
            use fullRange = full.Stack.narrow(2L, 2L, 3L)
            expectClose 1e-6 "a position range" range.Stack fullRange
            use finalLn = full.["final_post"]
            expectClose 1e-5 "the recomputed final norm of final_post is what the unembed sees" finalLn
                cache.["unembed.hook_in"]
            use lens = cache.LogitLens()
            Expect.sequenceEqual lens.Labels plain.Labels "logit lens labels"
            Expect.sequenceEqual lens.Stack.shape [| 3L; 2L; 12L; 97L |] "[layers + 1, batch, pos, d_vocab]"
            use lensFinal = lens.["final_post"]
            expectClose 1e-5 "the logit lens of final_post is the logits" lensFinal run.Logits
            Expect.throwsT<KeyNotFoundException> (fun () -> lens.["2_pre"] |> ignore) "unknown label")

        testCase "head and neuron stacks add up to attn_out and mlp_out, with remainders completing the stream"
        <| withRun "gpt2like" (fun model _ run ->
            let cache = run.Cache
            use heads = cache.StackHeadResults()
            Expect.equal heads.Count 8 "n_layers · n_heads"
            use bO = model.b_O
            for l in 0 .. 1 do
                use layerHeads = heads.Stack.narrow(0L, int64 (4 * l), 4L).sum(0L)
                use withBias = layerHeads + bO.[int64 l]
                expectClose 1e-5 (sprintf "Σ heads of layer %d + b_O = attn_out" l) withBias cache.["attn_out", l]
            use upTo1 = cache.StackHeadResults(layer = 1, inclRemainder = true)
            Expect.sequenceEqual upTo1.Labels [ "L0H0"; "L0H1"; "L0H2"; "L0H3"; "remainder" ] "layer 1 with remainder"
            use upTo1Sum = upTo1.Stack.sum(0L)
            expectClose 1e-5 "heads + remainder = resid_pre 1" upTo1Sum cache.["resid_pre", 1]
            use neurons = cache.StackNeuronResults(neurons = [| 3L; 17L |])
            Expect.sequenceEqual neurons.Labels [ "L0N3"; "L0N17"; "L1N3"; "L1N17" ] "neuron labels"
            use one = neurons.["L1N17"]
            use post = cache.["post", 1].select(-1L, 17L).unsqueeze(-1L)
            use manual = post * model.blocks.[1].mlp.W_out.[17L]
            expectClose 1e-6 "one neuron's output = post · W_out row" one manual
            use allNeurons = cache.StackNeuronResults(layer = 1)
            use neuronSum = allNeurons.Stack.sum(0L)
            use bOut = model.b_out
            use withBOut = neuronSum + bOut.[0L]
            expectClose 1e-5 "Σ neurons of layer 0 + b_out = mlp_out 0" withBOut cache.["mlp_out", 0]
            use rem = cache.StackNeuronResults(layer = 1, neurons = [| 0L |], inclRemainder = true, mlpInput = true)
            use remSum = rem.Stack.sum(0L)
            expectClose 1e-5 "neurons + remainder = resid_mid 1 with mlp_input" remSum cache.["resid_mid", 1])

        testCase "logit attributions: per token, per example, against incorrect tokens, and summing to the direct logit"
        <| withRun "gpt2like" (fun model _ run ->
            let cache = run.Cache
            use stack = cache.DecomposeResid()
            use tokens = torch.tensor([| 5L; 9L |])
            use wrong = torch.tensor([| 7L; 7L |])
            use perExample = cache.LogitAttrs(stack.Stack, tokens)
            Expect.sequenceEqual perExample.shape [| 6L; 2L; 12L |] "[component, batch, pos] with one token per example"
            use versus = cache.LogitAttrs(stack.Stack, tokens, wrong)
            use wrongAttrs = cache.LogitAttrs(stack.Stack, wrong)
            use difference = perExample - wrongAttrs
            expectClose 1e-6 "attribution to a difference = difference of attributions" versus difference
            use single = cache.LogitAttrs(stack.Stack, 9L)
            use fromTensor = perExample.select(1L, 1L)
            use singleRow = single.select(1L, 1L)
            expectClose 1e-6 "a scalar token" singleRow fromTensor
            use total = perExample.sum(0L)
            use normalized = cache.["ln_final.hook_normalized"]
            use directions = ResidualDirections.OfTokens(model, tokens).unsqueeze(1L)
            use direct = (normalized * directions).sum(-1L)
            expectClose 1e-5 "Σ attributions = normalised final stream · W_U[:, token]" total direct
            use bad = torch.tensor([| 5L; 9L; 1L |])
            Expect.throwsT<ArgumentException> (fun () -> cache.LogitAttrs(stack.Stack, tokens, bad) |> ignore)
                "token shapes must match"
            use outOfVocab = torch.tensor([| 97L; 0L |])
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> cache.LogitAttrs(stack.Stack, outOfVocab) |> ignore)
                "token ids in range")

        testCase "logit difference helper" <| withRun "gpt2like" (fun _ _ run ->
            use correct = torch.tensor([| 3L; 4L |])
            use incorrect = torch.tensor([| 8L; 1L |])
            use perExample = LogitDifference.PerExample(run.Logits, correct, incorrect)
            let manual =
                [| for b in 0L .. 1L ->
                    run.Logits.[b, 11L, correct.[b].item<int64>()].item<float32>()
                        - run.Logits.[b, 11L, incorrect.[b].item<int64>()].item<float32>() |]
            Expect.sequenceEqual (perExample.data<float32>().ToArray()) manual
                "logits[b, -1, correct] − logits[b, -1, incorrect]"
            Expect.floatClose Accuracy.medium (LogitDifference.Mean(run.Logits, correct, incorrect))
                (float (Array.average manual)) "mean over the batch"
            let metric =
                LogitDifference.NormalizedMetric(correct, incorrect,
                                                 LogitDifference.Mean(run.Logits, correct, incorrect), 0.0)
            Expect.floatClose Accuracy.high (metric.Invoke run.Logits) 1.0
                "the clean run scores 1 on its own normalised metric")

        testCase "attention-only models, filtered caches and bad layers give clear answers"
        <| withRun "attnonly" (fun model tokens run ->
            let cache = run.Cache
            use parts = cache.DecomposeResid()
            Expect.sequenceEqual parts.Labels [ "embed"; "pos_embed"; "0_attn_out"; "1_attn_out" ] "no MLP components"
            Expect.throwsT<InvalidOperationException> (fun () -> cache.StackNeuronResults() |> ignore) "no neurons"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () -> cache.AccumulatedResid(layer = Nullable 3) |> ignore)
                "layer past n_layers"
            Expect.throwsT<ArgumentException> (fun () -> cache.DecomposeResid(mode = "heads") |> ignore) "unknown mode"
            use filtered =
                model.RunWithCache(tokens,
                                   HookedTransformer.NamesFilter("hook_embed", "hook_pos_embed",
                                                                 "blocks.*.hook_attn_out"))
            Expect.throwsT<KeyNotFoundException> (fun () -> filtered.Cache.DecomposeResid(applyLn = true) |> ignore)
                "the cached scale is needed")
    ]
