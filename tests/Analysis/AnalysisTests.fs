/// Parity of Lens.Analysis with TransformerLens v3.5.1 (tests/fixtures/tl-oracle/*/analyses.safetensors).
module Lens.Tests.AnalysisTests

open System
open System.Text.Json
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

let tolerance = 1e-4

/// expectClose at the analysis tolerance, printing the measured max |diff| (the report reads these lines).
let check (set: string) (what: string) (actual: torch.Tensor) (expected: torch.Tensor) =
    expectClose tolerance (sprintf "%s %s" set what) actual expected
    printfn "[analysis parity] %s %s: max |diff| = %.3g" set what (maxAbsDiff actual expected)

let checkScalar (set: string) (what: string) (actual: float) (expected: float) =
    let d = abs (actual - expected)
    if d > tolerance then failtestf "%s %s: %g vs TransformerLens %g (|diff| %g)" set what actual expected d
    printfn "[analysis parity] %s %s: max |diff| = %.3g" set what d

let floats (t: torch.Tensor) = use c = t.to_type(torch.float64).cpu().contiguous() in c.data<float>().ToArray()

/// Eigenvalues compared as multisets: each expected eigenvalue is matched to the nearest unused actual one.
let checkEigenvalues (set: string) (what: string) (actual: torch.Tensor) (expectedRe: torch.Tensor)
    (expectedIm: torch.Tensor) =
    use re = actual.real
    use im = actual.imag
    let mine = Array.zip (floats re) (floats im)
    let theirs = Array.zip (floats expectedRe) (floats expectedIm)
    Expect.equal mine.Length theirs.Length (sprintf "%s %s: number of eigenvalues" set what)
    let used = Array.zeroCreate mine.Length
    let mutable worst = 0.0
    for (er, ei) in theirs |> Array.sortByDescending (fun (r, i) -> r * r + i * i) do
        let dist (r, i) = sqrt ((r - er) ** 2.0 + (i - ei) ** 2.0)
        let best =
            [| 0 .. mine.Length - 1 |] |> Array.filter (fun k -> not used.[k]) |> Array.minBy (fun k -> dist mine.[k])
        used.[best] <- true
        worst <- max worst (dist mine.[best])
    if worst > tolerance then failtestf "%s %s: eigenvalue multisets differ by up to %g" set what worst
    printfn "[analysis parity] %s %s (as a multiset): max |diff| = %.3g" set what worst

let labelsOf (oracle: Oracle) (key: string) =
    [ for l in oracle.Manifest.GetProperty("labels").GetProperty(key).EnumerateArray() -> l.GetString() ]

let scalarOf (oracle: Oracle) (key: string) = oracle.Manifest.GetProperty("scalars").GetProperty(key).GetDouble()

let parityOf (set: string) =
    let oracle = Oracle set
    let withData (body: HookedTransformer -> Collections.Generic.Dictionary<string, torch.Tensor>
                            -> Collections.Generic.Dictionary<string, torch.Tensor> -> unit) () =
        let analyses = oracle.Expected "analyses.safetensors"
        let expected = oracle.Expected "expected.safetensors"
        use model = oracle.Model()
        try body model analyses expected
        finally disposeAll analyses; disposeAll expected
    testList set [
        testCase "head detection: every pattern, plain, excluding BOS and current token, and the abs measure"
        <| withData (fun model analyses _ ->
            let tokens = analyses.["head_detection.tokens"]
            use run = model.RunWithCache(tokens.unsqueeze(0L), removeBatchDim = true)
            for l in 0 .. model.Config.NLayers - 1 do
                check set (sprintf "head_detection.pattern.blocks.%d" l) run.Cache.["pattern", l]
                    analyses.[sprintf "head_detection.pattern.blocks.%d" l]
            for name in HeadDetector.HeadNames do
                use pattern = HeadDetector.Pattern(name, tokens)
                check set (sprintf "head_detection.%s.detection_pattern" name) pattern
                    analyses.[sprintf "head_detection.%s.detection_pattern" name]
                use plain = HeadDetector.DetectHead(model, tokens, name)
                check set ("head_detection." + name) plain analyses.["head_detection." + name]
                use excluding =
                    HeadDetector.DetectHead(model, tokens, name, excludeBos = true, excludeCurrentToken = true)
                check set (sprintf "head_detection.%s.exclude_bos_and_current" name) excluding
                    analyses.[sprintf "head_detection.%s.exclude_bos_and_current" name]
                use absolute = HeadDetector.DetectHead(model, tokens, name, errorMeasure = "abs")
                check set (sprintf "head_detection.%s.abs" name) absolute
                    analyses.[sprintf "head_detection.%s.abs" name])

        testCase "composition scores Q, K and V" <| withData (fun model analyses _ ->
            for mode in [ "Q"; "K"; "V" ] do
                use scores = Composition.AllScores(model, mode)
                check set ("composition." + mode) scores.Scores analyses.["composition." + mode])

        testCase "OV and QK of L1H2: product, eigenvalues, singular values, norm" <| withData (fun model analyses _ ->
            use ov = model.OV
            use qk = model.QK
            for name, all in [ "OV", ov; "QK", qk ] do
                use head = all.[1L, 2L]
                let key = sprintf "factored.%s.L1H2" name
                use ab = head.AB
                check set (key + ".AB") ab analyses.[key + ".AB"]
                use eig = head.Eigenvalues
                checkEigenvalues set (key + ".eigenvalues") eig analyses.[key + ".eigenvalues.real"]
                    analyses.[key + ".eigenvalues.imag"]
                checkEigenvalues set (key + ".eigenvalues_sorted") eig analyses.[key + ".eigenvalues_sorted.real"]
                    analyses.[key + ".eigenvalues_sorted.imag"]
                use s = head.S
                check set (key + ".S") s analyses.[key + ".S"]
                use norm = head.Norm()
                check set (key + ".norm") norm analyses.[key + ".norm"]
                checkScalar set (key + ".norm (scalars)") (norm.item<float32>() |> float)
                    (scalarOf oracle (key + ".norm")))

        testCase "full OV circuit of L1H2: product, singular values, norm, top-5 per row, diagonal top-1 fraction"
        <| withData (fun model analyses _ ->
            use full = Circuits.FullOvCircuit(model, 1, 2)
            Expect.sequenceEqual full.Shape [| 97L; 97L |] "[d_vocab, d_vocab] without forming it"
            Expect.equal full.Mdim 16L "kept factored through d_head"
            let key = "factored.full_OV_circuit.L1H2"
            use ab = full.AB
            check set (key + ".AB") ab analyses.[key + ".AB"]
            use s = full.S
            check set (key + ".S") s analyses.[key + ".S"]
            use norm = full.Norm()
            check set (key + ".norm") norm analyses.[key + ".norm"]
            checkScalar set (key + ".norm (scalars)") (norm.item<float32>() |> float) (scalarOf oracle (key + ".norm"))
            let struct (values, indices) = ab.topk(5, 1)
            use values = values
            use indices = indices
            check set (key + ".top5_values") values analyses.[key + ".top5_values"]
            Expect.sequenceEqual (floats indices) (floats analyses.[key + ".top5_indices"])
                (sprintf "%s %s.top5_indices" set key)
            printfn "[analysis parity] %s %s.top5_indices: identical" set key
            use argmax = ab.argmax(1L, false)
            use rows = torch.arange(ab.shape.[0])
            let fraction = argmax.eq(rows).to_type(torch.float64).mean().item<float>()
            check set (key + ".diag_top1_fraction") (torch.tensor(fraction)) analyses.[key + ".diag_top1_fraction"]
            checkScalar set (key + ".diag_top1_fraction (scalars)") fraction
                (scalarOf oracle (key + ".diag_top1_fraction")))

        testCase "accumulated and decomposed residual streams, stacked head results and logit attributions, with labels"
        <| withData (fun model analyses expected ->
            use run = model.RunWithCache(expected.["tokens"])
            let cache = run.Cache
            use accumulated = cache.AccumulatedResid(applyLn = true)
            check set "cache.accumulated_resid.apply_ln" accumulated.Stack analyses.["cache.accumulated_resid.apply_ln"]
            Expect.sequenceEqual accumulated.Labels (labelsOf oracle "cache.accumulated_resid.apply_ln")
                "accumulated_resid labels"
            use decomposed = cache.DecomposeResid(applyLn = true)
            check set "cache.decompose_resid.apply_ln" decomposed.Stack analyses.["cache.decompose_resid.apply_ln"]
            Expect.sequenceEqual decomposed.Labels (labelsOf oracle "cache.decompose_resid.apply_ln")
                "decompose_resid labels"
            use heads = cache.StackHeadResults()
            check set "cache.stack_head_results" heads.Stack analyses.["cache.stack_head_results"]
            Expect.sequenceEqual heads.Labels (labelsOf oracle "cache.stack_head_results") "stack_head_results labels"
            use raw = cache.DecomposeResid()
            use attrs = cache.LogitAttrs(raw.Stack, analyses.["cache.logit_attrs.tokens"])
            check set "cache.logit_attrs" attrs analyses.["cache.logit_attrs"]
            Expect.sequenceEqual raw.Labels (labelsOf oracle "cache.logit_attrs") "logit_attrs labels")

        testCase "zero ablation of L1H2 (hook_z): logits, per-token loss and mean loss"
        <| withData (fun model analyses expected ->
            use output =
                Ablation.Run(model, expected.["tokens"], [ Ablation.Zero(AblationTarget.Head(1, 2)) ], ReturnType.Both,
                             lossPerToken = true)
            check set "ablation.logits" output.Logits analyses.["ablation.logits"]
            check set "ablation.loss_per_token" output.Loss analyses.["ablation.loss_per_token"]
            use mean = output.Loss.mean()
            check set "ablation.loss_mean" mean analyses.["ablation.loss_mean"]
            checkScalar set "ablation.loss_mean (scalars)" (mean.item<float32>() |> float)
                (scalarOf oracle "ablation.loss_mean")
            use loss = model.Loss(expected.["tokens"])
            checkScalar set "loss_mean (scalars)" (loss.item<float32>() |> float) (scalarOf oracle "loss_mean")
            Expect.equal (model.HookDict.Values |> Seq.sumBy (fun h -> h.HookCount)) 0
                "the ablation hooks are removed after the run")
    ]

[<Tests>]
let tests =
    testList "analysis parity with TransformerLens" [
        parityOf "gpt2like"
        parityOf "attnonly"
    ]
