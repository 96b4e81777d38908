module Lens.Tests.WeightProcessingTests

open System.Collections.Generic
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Pretrained
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

/// Prints a measured parity error (the largest |actual - expected|) so test runs record the numbers.
let measured (what: string) (actual: torch.Tensor) (expected: torch.Tensor) =
    let d = maxAbsDiff actual expected
    printfn "[parity] %s: max |diff| = %.3g" what d
    d

let closeAndMeasured tol what actual expected =
    measured what actual expected |> ignore
    expectClose tol what actual expected

let logSoftmax (t: torch.Tensor) = t.to_type(torch.float64).log_softmax(-1)

/// The model's parameters as a state dict of copies (name → tensor).
let copies (model: HookedTransformer) =
    let d = Dictionary<string, torch.Tensor>()
    for kv in model.StateDict() do d.[kv.Key] <- kv.Value.clone()
    d

/// A small random model with noisy norm weights and biases, so folding has something to fold.
let randomModel (configure: HookedTransformerConfig -> unit) =
    let cfg =
        HookedTransformerConfig(NLayers = 2, DModel = 32, DHead = 8, NCtx = 16, DVocab = 41, Seed = System.Nullable 7)
    configure cfg
    let model = new HookedTransformer(cfg)
    use g = new torch.Generator(11UL)
    use _ = torch.no_grad()
    for kv in model.StateDict() do
        let leaf = kv.Key.Substring(kv.Key.LastIndexOf('.') + 1)
        if leaf = "w" then kv.Value.add_(torch.randn(kv.Value.shape, generator = g) * 0.2) |> ignore
        elif leaf.StartsWith "b" || leaf.StartsWith "_b" then
            kv.Value.add_(torch.randn(kv.Value.shape, generator = g) * 0.1) |> ignore
    model

let tokensFor (vocab: int64) =
    use g = new torch.Generator(5UL)
    torch.randint(vocab, [| 2L; 10L |], generator = g, dtype = torch.int64)

let fixtureChecks (set: string) =
    let oracle = Oracle set
    testList set [
        testCase "WeightProcessing.Process on the state dict equals TransformerLens's processed_weights within 1e-5"
        <| fun () ->
            use model = oracle.Model()
            let sd = copies model
            let processedCfg = WeightProcessing.Process(sd, model.Config, WeightProcessingOptions())
            Expect.equal processedCfg.NormalizationType "LNPre" "LN becomes LNPre"
            Expect.equal model.Config.NormalizationType "LN" "the input config is left alone"
            let expected = oracle.Expected "processed_weights.safetensors"
            Expect.sequenceEqual (sd.Keys |> Seq.sort) (expected.Keys |> Seq.sort)
                "the same parameters as TransformerLens's processed state dict (no ln weights)"
            let worst = expected.Keys |> Seq.map (fun k -> maxAbsDiff sd.[k] expected.[k]) |> Seq.max
            printfn "[parity] %s processed weights (state dict): max |diff| = %.3g" set worst
            for k in expected.Keys do expectClose 1e-5 k sd.[k] expected.[k]
            for t in sd.Values do t.Dispose()
            disposeAll expected

        testCase ("model.ProcessWeights: LNPre norms, processed weights, every processed activation and logits match; "
                  + "log-probs equal the unprocessed model's") <| fun () ->
            let expected = oracle.Expected "processed_expected.safetensors"
            let weights = oracle.Expected "processed_weights.safetensors"
            let tokens = expected.["tokens"]
            use model = oracle.Model()
            use unprocessedLogits = model.Forward(tokens)
            model.ProcessWeights()
            Expect.equal model.Config.NormalizationType "LNPre" "config switched to LNPre"
            Expect.isNull (box model.ln_final.w) "ln_final has no weight any more"
            Expect.equal model.blocks.[0].ln1.Kind NormalizationKind.LNPre "block norms rebuilt as LNPre"
            let names = model.StateDict() |> Seq.map (fun kv -> kv.Key) |> Seq.sort |> List.ofSeq
            Expect.sequenceEqual names (weights.Keys |> Seq.sort)
                "the processed model's parameters are TransformerLens's processed state dict"
            let worstWeight = model.StateDict() |> Seq.map (fun kv -> maxAbsDiff kv.Value weights.[kv.Key]) |> Seq.max
            printfn "[parity] %s processed weights (model): max |diff| = %.3g" set worstWeight
            for kv in model.StateDict() do expectClose 1e-5 kv.Key kv.Value weights.[kv.Key]
            use run = model.RunWithCache(tokens)
            closeAndMeasured 1e-5 (set + " processed logits") run.Logits expected.["logits"]
            for name in expected.Keys do
                if name.Contains "hook_" then
                    closeAndMeasured 1e-5 (set + " processed " + name) run.Cache.[name] expected.[name]
            use perToken = model.Loss(tokens, perToken = true)
            closeAndMeasured 1e-5 (set + " processed loss_per_token") perToken expected.["loss_per_token"]
            use a = logSoftmax run.Logits
            use b = logSoftmax unprocessedLogits
            closeAndMeasured 1e-5 (set + " processed vs unprocessed log-probs") a b
            disposeAll expected
            disposeAll weights

        testCase ("each step alone keeps the model's function (fold_ln, centring, value-bias folding exactly; "
                  + "center_unembed up to log-softmax)") <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            let tokens = expected.["tokens"]
            let steps =
                [ "fold_ln", (fun (m: HookedTransformer) -> m.ProcessWeights(true, false, false, false)), false
                  "fold_ln + center_writing_weights", (fun m -> m.ProcessWeights(true, true, false, false)), false
                  "fold_value_biases", (fun m -> m.ProcessWeights(false, false, false, true)), false
                  "center_unembed", (fun m -> m.ProcessWeights(false, false, true, false)), true
                  "refactor_factored_attn_matrices", (fun m -> m.ProcessWeights(false, false, false, false, true)),
                      false ]
            for (name, apply, onlyLogProbs) in steps do
                use model = oracle.Model()
                apply model
                use logits = model.Forward(tokens)
                if onlyLogProbs then
                    use a = logSoftmax logits
                    use b = logSoftmax expected.["logits"]
                    closeAndMeasured 1e-5 (sprintf "%s %s log-probs" set name) a b
                else closeAndMeasured 1e-5 (sprintf "%s %s logits" set name) logits expected.["logits"]
            disposeAll expected

        testCase "refactor_factored_attn_matrices: W_O has orthonormal rows, W_Q W_Kᵀ and W_V W_O are unchanged"
        <| fun () ->
            use model = oracle.Model()
            use qk0 = model.W_Q.matmul(model.W_K.transpose(-1, -2))
            use ov0 = model.W_V.matmul(model.W_O)
            model.ProcessWeights(false, false, false, false, true)
            use qk1 = model.W_Q.matmul(model.W_K.transpose(-1, -2))
            use ov1 = model.W_V.matmul(model.W_O)
            closeAndMeasured 1e-5 (set + " refactor QK") qk1 qk0
            closeAndMeasured 1e-5 (set + " refactor OV") ov1 ov0
            use wo = model.W_O
            use gram = wo.matmul(wo.transpose(-1, -2))
            use eye = torch.eye(wo.shape.[2]).expand_as(gram)
            expectClose 1e-5 "W_O W_Oᵀ = I" gram eye
    ]

[<Tests>]
let tests =
    testList "weight processing" [
        fixtureChecks "gpt2like"
        fixtureChecks "attnonly"

        testCase ("RMS, gated MLP, grouped-query attention, rotary: RMSPre norms, logits unchanged up to log-softmax, "
                  + "save/load round trip") <| fun () ->
            use model = randomModel (fun c ->
                c.NormalizationType <- "RMS"; c.FinalRms <- true; c.GatedMlp <- true; c.ActFn <- "silu"
                c.PositionalEmbeddingType <- "rotary"; c.NHeads <- 4; c.NKeyValueHeads <- System.Nullable 2)
            use tokens = tokensFor 41L
            use before = model.Forward(tokens)
            use bV = model.b_V
            Expect.isGreaterThan (bV.abs().sum().item<float32>()) 0.0f
                "the grouped value biases are non-zero before folding"
            model.ProcessWeights()
            Expect.equal model.Config.NormalizationType "RMSPre" "RMS becomes RMSPre"
            Expect.equal model.ln_final.Kind NormalizationKind.RMSPre "final_rms: ln_final is RMSPre"
            Expect.isFalse (model.StateDict() |> Seq.exists (fun kv -> kv.Key.Contains "ln")) "no norm parameters left"
            use bVAfter = model.b_V
            Expect.equal (bVAfter.abs().sum().item<float32>()) 0.0f "value biases folded into b_O"
            use after = model.Forward(tokens)
            use a = logSoftmax after
            use b = logSoftmax before
            closeAndMeasured 1e-5 "RMS/GQA processed vs unprocessed log-probs" a b
            let dir = Path.Combine(Path.GetTempPath(), "lens-processed-" + string (System.Guid.NewGuid()))
            try
                model.Save dir
                use reloaded = HookedTransformer.Load dir
                Expect.equal reloaded.ln_final.Kind NormalizationKind.RMSPre ("the reloaded processed model has RMSPre "
                                                                              + "norms too")
                use again = reloaded.Forward(tokens)
                expectClose 1e-6 "reloaded processed logits" again after
            finally Directory.Delete(dir, true)

        testCase "hooks on norms are re-created after folding and still fire" <| fun () ->
            use model = randomModel ignore
            model.ProcessWeights()
            Expect.isTrue (model.HookDict.ContainsKey "blocks.0.ln1.hook_scale") "norm hooks still listed"
            let mutable seen = 0
            use _ = model.AddHook("blocks.0.ln1.hook_scale", HookFunction(fun _ _ -> seen <- seen + 1; null))
            use tokens = tokensFor 41L
            use _logits = model.Forward(tokens)
            Expect.equal seen 1 "the new LNPre's hook_scale ran"

        testCase "a missing parameter is named in the error" <| fun () ->
            use model = randomModel ignore
            let sd = copies model
            sd.Remove "blocks.1.ln1.b" |> ignore
            let message =
                messageOf<System.ArgumentException> (fun () -> WeightProcessing.FoldLayerNorm(sd, model.Config))
            Expect.stringContains message "blocks.1.ln1.b" "names the tensor"

        testCase "refactoring a rotary model is refused with a reason" <| fun () ->
            use model = randomModel (fun c -> c.PositionalEmbeddingType <- "rotary")
            let message =
                messageOf<System.ArgumentException> (fun () -> model.ProcessWeights(false, false, false, false, true))
            Expect.stringContains message "rotary" "says why"
    ]
