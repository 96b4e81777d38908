/// Batched activation patching (the cells of a sweep as rows of batched forwards, from the patched layer,
/// computing only the logits the metric reads) against the one-cell-per-forward reference, for every
/// patching function, on the gpt2like oracle model and the demo model; the DSL's `patch` likewise; and the
/// memory a gradient cache keeps.
module Lens.Tests.BatchedPatchingTests

open System
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Tests.TestSupport
open Lens.Tests.InterventionTests

module Dsl = Lens.Tests.DslRuntimeTests

type private Sweep = torch.Tensor -> ActivationCache -> Func<torch.Tensor, float> -> PatchingOptions -> PatchingResult

/// Every patching function of Analysis/Patching.cs that the model has, and Generic with the other setters.
let private sweeps (model: HookedTransformer) : (string * Sweep) list =
    let generic name axes (setter: PatchSetter) : Sweep = fun t c m o ->
        Patching.Generic(model, t, c, m, name, axes, setter, o)
    [ yield "resid_pre", (fun t c m o -> Patching.ResidPre(model, t, c, m, o))
      yield "attn_out", (fun t c m o -> Patching.AttnOut(model, t, c, m, o))
      if not model.Config.AttnOnly then
          yield "resid_mid", (fun t c m o -> Patching.ResidMid(model, t, c, m, o))
          yield "mlp_out", (fun t c m o -> Patching.MlpOut(model, t, c, m, o))
      yield "heads (z, all positions)", (fun t c m o -> Patching.AttnHeadOutAllPos(model, t, c, m, o))
      yield "heads by position (z)", (fun t c m o -> Patching.AttnHeadOutByPos(model, t, c, m, o))
      yield "queries", (fun t c m o -> Patching.AttnHeadQAllPos(model, t, c, m, o))
      yield "keys", (fun t c m o -> Patching.AttnHeadKAllPos(model, t, c, m, o))
      yield "values", (fun t c m o -> Patching.AttnHeadVAllPos(model, t, c, m, o))
      yield "patterns", (fun t c m o -> Patching.AttnHeadPatternAllPos(model, t, c, m, o))
      yield "block every", (fun t c m o -> Patching.GetActPatchBlockEvery(model, t, c, m, o))
      yield "head every", (fun t c m o -> Patching.AttnHeadAllPosEvery(model, t, c, m, o))
      yield "resid_post whole layer",
            generic "resid_post" [| "layer" |] (PatchSetter(fun a i b -> Patching.LayerSetter(a, i, b)))
      yield "pattern by destination",
            generic "pattern" [| "layer"; "head"; "dest_pos" |]
                (PatchSetter(fun a i b -> Patching.LayerHeadPosPatternSetter(a, i, b))) ]

/// Every sweep batched (declared reads, every logit, one cell per forward of the batched path) against the reference.
let private expectBatchedEqualsReference (label: string) (model: HookedTransformer) (corrupted: torch.Tensor)
    (cache: ActivationCache)
                                         (metric: Func<torch.Tensor, float>) (reads: LogitsRead) =
    let variants =
        [ "declared reads", PatchingOptions(MetricReads = reads)
          "every logit", PatchingOptions.Default
          "one cell per chunk", PatchingOptions(MetricReads = reads, MemoryBudgetBytes = 1.0) ]
    let mutable worst, cells = 0.0, 0L
    for name, sweep in sweeps model do
        use reference = sweep corrupted cache metric PatchingOptions.Reference
        for variant, options in variants do
            use batched = sweep corrupted cache metric options
            Expect.sequenceEqual batched.Values.shape reference.Values.shape (sprintf "%s, %s: shape" name variant)
            Expect.equal [ for l in batched.AxisLabels -> List.ofSeq l ]
                [ for l in reference.AxisLabels -> List.ofSeq l ] (sprintf "%s, %s: labels" name variant)
            let d = maxAbsDiff batched.Values reference.Values
            // float32 rounding of a differently blocked matmul: 1e-6 of the metric's magnitude (at least 1).
            let scale = max 1.0 (use m = reference.Values.abs().max() in m.item<float>())
            if d > 1e-6 * scale then
                failtestf "%s %s (%s): batched differs from one cell per forward by %g (magnitude %g)" label name
                    variant d scale
            worst <- max worst d
        cells <- cells + reference.Values.numel()
    eprintfn "[batched patching] %s: %d cells over %d sweeps, max |batched − one cell per forward| = %.3g" label cells
        (sweeps model).Length worst

let private logitDiff (correct: int64) (incorrect: int64) =
    let c, i = torch.tensor correct, torch.tensor incorrect
    LogitDifference.Metric(c, i), LogitDifference.Reads(c, i)

[<Tests>]
let tests =
    testList "batched patching" [
        testCase "every patching function gives the one-cell-per-forward numbers within 1e-6 on the gpt2like model"
        <| withModel "gpt2like" (fun model tokens ->
            use clean = model.RunWithCache(tokens)
            use corrupted = corruptAt tokens 4L
            let metric, reads = logitDiff 5L 7L
            expectBatchedEqualsReference "gpt2like, logit difference" model corrupted clean.Cache metric reads
            // A metric of several positions and the whole vocabulary: the log-probability of the next tokens.
            let logProb = Func<torch.Tensor, float>(fun logits ->
                use scope = torch.NewDisposeScope()
                let lp = logits.narrow(1, 6L, 5L).log_softmax(-1)
                lp.gather(-1, tokens.narrow(1, 7L, 5L).unsqueeze(-1)).mean().to_type(torch.float64).item<float>())
            expectBatchedEqualsReference "gpt2like, log-probability of positions 6-10" model corrupted clean.Cache
                logProb (LogitsRead([| 6L; 7L; 8L; 9L; 10L |], null)))

        testCase "every patching function gives the one-cell-per-forward numbers within 1e-6 on the demo model"
        <| fun () ->
            use model = ModelLoader.Load "demo-attn-only-2l"
            use clean = model.ToTokens "When John and Mary went to the store, Mary gave a drink to"
            use corrupted = model.ToTokens "When Mary and John went to the store, John gave a drink to"
            use cleanRun = model.RunWithCache(clean)
            let metric, reads = logitDiff (model.ToSingleToken " Mary") (model.ToSingleToken " John")
            expectBatchedEqualsReference "demo-attn-only-2l, IOI logit difference" model corrupted cleanRun.Cache metric
                reads

        testCase ("a metric that reads logits it did not declare is refused; hooks already attached run one cell per "
                  + "forward") <| withModel "gpt2like" (fun model tokens ->
            use clean = model.RunWithCache(tokens)
            use corrupted = corruptAt tokens 4L
            let metric, _ = logitDiff 5L 7L
            let undeclared = PatchingOptions(MetricReads = LogitsRead.At(-1L, 5L))
            Expect.throwsT<ArgumentException> (fun () ->
                Patching.ResidPre(model, corrupted, clean.Cache, metric, undeclared) |> ignore)
                "token 7 is read but not declared"
            use _ = model.AddHook("blocks.0.hook_mlp_out", HookFunction(fun x _ -> x * 0.5f))
            use reference = Patching.AttnHeadOutByPos(model, corrupted, clean.Cache, metric, PatchingOptions.Reference)
            use batched = Patching.AttnHeadOutByPos(model, corrupted, clean.Cache, metric)
            Expect.equal (maxAbsDiff batched.Values reference.Values) 0.0
                "with a hook attached the sweep is the reference itself")

        testCase "the DSL's patch equals the one-cell-per-forward sweep within 1e-6 for every target and metric"
        <| fun () ->
            let corruptedText, cleanText =
                "[[3, 14, 15, 92, 65], [35, 89, 79, 32, 38]]", "[[3, 14, 15, 92, 66], [35, 89, 79, 32, 37]]"
            let text =
                Dsl.tinyModel + sprintf "input tokens %s\n" corruptedText
                + sprintf "patch heads from tokens %s metric logit_diff 7 9\n" cleanText
                + sprintf "patch heads_by_pos from tokens %s metric prob 7\n" cleanText
                + sprintf "patch blocks from tokens %s metric loss\n" cleanText
                + sprintf "patch resid_pre from tokens %s metric logit_diff 7 9\n" cleanText
            let state = Dsl.run text
            let reported = Dsl.results "patch" state
            use model = HookedTransformer.Load Dsl.tinyDir
            use corrupted = torch.tensor([| 3L; 14L; 15L; 92L; 65L; 35L; 89L; 79L; 32L; 38L |]).reshape(2L, 5L)
            use clean = torch.tensor([| 3L; 14L; 15L; 92L; 66L; 35L; 89L; 79L; 32L; 37L |]).reshape(2L, 5L)
            use cleanRun = model.RunWithCache clean
            let diff, _ = logitDiff 7L 9L
            let prob = Func<torch.Tensor, float>(fun logits ->
                use scope = torch.NewDisposeScope()
                logits.select(1, -1L).to_type(torch.float64).softmax(-1).select(-1, 7L).mean().item<float>())
            let loss = Func<torch.Tensor, float>(fun logits ->
                use scope = torch.NewDisposeScope()
                LossFunctions.LmCrossEntropy(logits, corrupted).to_type(torch.float64).item<float>())
            let reference = PatchingOptions.Reference
            use heads = Patching.AttnHeadOutAllPos(model, corrupted, cleanRun.Cache, diff, reference)
            use byPos = Patching.AttnHeadOutByPos(model, corrupted, cleanRun.Cache, prob, reference)
            use blocks = Patching.GetActPatchBlockEvery(model, corrupted, cleanRun.Cache, loss, reference)
            use resid = Patching.ResidPre(model, corrupted, cleanRun.Cache, diff, reference)
            let flat (r: Lens.Dsl.Runtime.ExperimentResult) =
                match r.Value with
                | :? Lens.Dsl.Runtime.LayerHeadValue as v -> Dsl.flatGrid v.Values
                | :? Lens.Dsl.Runtime.TensorValue as v -> v.Values
                | other -> failtestf "patch gave %s" other.Kind
            let mutable worst = 0.0
            for r, expected, what in
                    List.zip3 reported [ heads; byPos; blocks; resid ]
                        [ "heads"; "heads_by_pos"; "blocks"; "resid_pre" ] do
                let viaDsl, direct = flat r, Dsl.asReported expected.Values
                Expect.equal viaDsl.Length direct.Length (what + ": size")
                Array.iter2 (fun (a: float) b ->
                    worst <- max worst (abs (a - b)); Expect.floatClose { absolute = 1e-6; relative = 0.0 } a b what)
                    viaDsl direct
            eprintfn
                "[batched patching] DSL patch (heads, heads_by_pos, blocks, resid_pre) vs one cell per forward: max \
                 |diff| %.3g (values as reported)" worst

        testCase "a backward over a full cache keeps one copy of each activation and gradient"
        <| withModel "gpt2like" (fun model tokens ->
            use run = model.RunWithCache(tokens, ReturnType.Loss, includeBackward = true)
            let entries = [ for kv in run.Cache -> kv.Key, kv.Value ]
            Expect.isGreaterThan entries.Length 60 "every activation and its _grad (40 hook points of 2 layers)"
            let own = entries |> List.sumBy (fun (_, t) -> float (t.numel() * t.ElementSize))
            let storages =
                entries
                |> List.filter (fun (_, t) -> t.dtype = torch.float32)
                |> List.map (fun (_, t) -> use s = t.storage<float32>() in s.data_ptr(), float (s.nbytes()))
                |> List.distinctBy fst
            let held = storages |> List.sumBy snd
            for name, t in entries do
                Expect.isFalse t.requires_grad (name + " is detached: no autograd graph stays alive through the cache")
            eprintfn "[gradient cache memory] %d entries: %.0f bytes of their own, %.0f bytes of storage held"
                entries.Length own held
            Expect.isLessThanOrEqual held own ("the storages the cache holds are no larger than its tensors: no "
                                               + "activation is kept twice, nor a larger buffer behind a view"))
    ]
