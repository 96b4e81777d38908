/// Gradients against TransformerLens's `run_with_cache(incl_bwd=True)` and attribution patching (the
/// `grads` oracle set), backward hooks, and attribution patching against true activation patching on the
/// demo model.
module Lens.Tests.GradientTests

open System
open System.Text.RegularExpressions
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

/// |actual − expected| ≤ tol · max|expected| everywhere (the oracle's rule); returns the error relative to
/// max|expected|. A gradient that is zero in exact arithmetic (b_K: adding one vector to every key shifts a
/// query's scores equally, which softmax ignores) is float noise of ~1e-9 in both; it must stay below 1e-7.
let expectRelMax (tol: float) (what: string) (actual: torch.Tensor) (expected: torch.Tensor) =
    Expect.sequenceEqual actual.shape expected.shape (what + ": shape")
    use e64 = expected.to_type(torch.float64)
    use m = e64.abs().max()
    let scale = m.item<float>()
    let err = maxAbsDiff actual expected
    if scale < 1e-6 then
        if err > 1e-7 then failtestf "%s: a numerically zero gradient (max |expected| %g) differs by %g" what scale err
        0.0
    else
        if err > tol * scale then failtestf "%s: max |diff| %g exceeds %g × max|expected| (%g)" what err tol scale
        err / scale

/// TransformerLens's ln1 gradients are the query path's share only; the fixture's autograd total is what Lens reports.
let private isLn1 (name: string) = Regex.IsMatch(name, @"^blocks\.\d+\.ln1\.hook_(scale|normalized)$")

let private expectedGrad (expected: Collections.Generic.Dictionary<string, torch.Tensor>) (name: string) =
    if isLn1 name then expected.["autograd_total." + name + "_grad"] else expected.[name + "_grad"]

let private scalarOf (t: torch.Tensor) = t.to_type(torch.float64).item<float>()

let private logitDiff (attribution: Collections.Generic.Dictionary<string, torch.Tensor>) =
    let ids = attribution.["metric_token_ids"]
    LogitDifference.Differentiable(ids.[0L], ids.[1L])

let private recorder (into: torch.Tensor ref) =
    HookFunction(fun g _ -> into.Value <- g.detach().clone().DetachFromDisposeScope(); null)

let oracleTests =
    let oracle = Oracle "grads"
    testList "grads oracle" [
        testCase ("RunWithCache with includeBackward: every activation, _grad and parameter gradient match "
                  + "TransformerLens within 1e-5 of each tensor's largest magnitude (ln1: the total)") <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            use run =
                model.RunWithCache(expected.["tokens"], ReturnType.Loss, includeBackward = true,
                                   parameterGradients = true)
            expectClose 1e-5 "loss_mean" run.Loss expected.["loss_mean"]
            let names = oracle.HookNames "forward"
            Expect.equal names.Length 40 "the manifest lists 40 hooks"
            Expect.sequenceEqual (run.Cache.Keys |> Seq.truncate 40) names
                "activations first, in the order the forward reaches them"
            Expect.sequenceEqual (run.Cache.Keys |> Seq.sort)
                (Seq.append names (names |> Seq.map (fun n -> n + "_grad")) |> Seq.sort)
                "activations and their _grad entries, nothing else"
            let mutable worst = 0.0
            for n in names do
                expectClose 1e-5 n run.Cache.[n] expected.[n]
                worst <- max worst (expectRelMax 1e-5 (n + "_grad") run.Cache.[n + "_grad"] (expectedGrad expected n))
            let parameters = model.Parameters()
            Expect.equal parameters.Count 38 "38 parameters, as the manifest counts"
            let mutable worstParam = 0.0
            for struct (name, _) in parameters do
                worstParam <-
                    max worstParam
                        (expectRelMax 1e-5 (name + ".grad") run.ParameterGradients.[name] expected.[name + ".grad"])
            eprintfn
                "grads parity: activation gradients max error %.3g, parameter gradients %.3g (relative to each \
                 tensor's largest magnitude)" worst worstParam
            disposeAll expected

        testCase ("lens cache CHECKPOINT --tokens T --grad writes every activation, its _grad, the logits and the "
                  + "loss, matching TransformerLens") <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            let dir = IO.Path.Combine(IO.Path.GetTempPath(), "lens-grad-" + Guid.NewGuid().ToString("N"))
            try
                (use model = oracle.Model() in model.Save dir)
                let rows = expected.["tokens"].data<int64>().ToArray() |> Array.chunkBySize 10
                let json = "[" + String.Join(",", rows |> Array.map (fun r -> "[" + String.Join(",", r) + "]")) + "]"
                let out = IO.Path.Combine(dir, "grads.safetensors")
                let r = Processes.lens [ "cache"; dir; "--tokens"; json; "--grad"; "--out"; out ]
                Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
                let written = Lens.IO.SafetensorsFile.LoadAll out
                expectClose 1e-5 "logits" written.["logits"] expected.["logits"]
                expectClose 1e-5 "loss" written.["loss"] expected.["loss_mean"]
                let names = oracle.HookNames "forward"
                for n in names do
                    expectClose 1e-5 n written.[n] expected.[n]
                    expectRelMax 1e-5 (n + "_grad") written.[n + "_grad"] (expectedGrad expected n) |> ignore
                Expect.equal written.Count (2 * names.Length + 3) "activations, gradients, logits, tokens and loss"
                disposeAll written
            finally
                if IO.Directory.Exists dir then IO.Directory.Delete(dir, true)
            disposeAll expected

        testCase ("ln1's _grad is the total over q, k and v, not TransformerLens's query share (which the fixture "
                  + "shows differs)") <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            use run = model.RunWithCache(expected.["tokens"], ReturnType.Loss, includeBackward = true)
            for n in [ "blocks.0.ln1.hook_scale"; "blocks.1.ln1.hook_normalized" ] do
                expectRelMax 1e-5 n run.Cache.[n + "_grad"] expected.["autograd_total." + n + "_grad"] |> ignore
                Expect.isGreaterThan (maxAbsDiff run.Cache.[n + "_grad"] expected.[n + "_grad"]) 1e-3
                    (n + ": TransformerLens's stored share differs from the total")
            expectRelMax 1e-5 "cache[\"scale_grad\", 0, \"ln1\"]" run.Cache.["scale_grad", 0, "ln1"]
                expected.["autograd_total.blocks.0.ln1.hook_scale_grad"] |> ignore
            expectRelMax 1e-5 "cache[\"z_grad\", 1]" run.Cache.["z_grad", 1] expected.["blocks.1.attn.hook_z_grad"]
                |> ignore
            disposeAll expected

        testCase ("a backward hook sees the gradient flowing into its activation, may replace it, and is removed with "
                  + "its scope") <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            let tokens = expected.["tokens"]
            let seen = ref null
            (
                use _ = model.Hooks [ HookSpec.Backward("blocks.0.hook_mlp_out", recorder seen) ]
                use loss = model.Loss tokens
                loss.backward()
            )
            expectRelMax 1e-5 "gradient seen at blocks.0.hook_mlp_out" seen.Value
                expected.["blocks.0.hook_mlp_out_grad"] |> ignore
            let doubled = HookFunction(fun g _ -> g * 2.0)
            (
                use _ =
                    model.Hooks [ HookSpec.Backward("blocks.0.hook_mlp_out", recorder seen);
                                  HookSpec.Backward("blocks.1.hook_resid_pre", doubled) ]
                use loss = model.Loss tokens
                loss.backward()
            )
            use twice = expected.["blocks.0.hook_mlp_out_grad"] * 2.0
            expectRelMax 1e-5 "gradient below a hook that doubles it" seen.Value twice |> ignore
            Expect.isFalse (model.HookDict.Values |> Seq.exists (fun h -> h.HasHooks)) "no hook left after the scopes"
            use logits = model.Forward tokens
            Expect.isFalse logits.requires_grad "without backward hooks the forward builds no graph"
            disposeAll expected

        testCase "hooks are removed after an exception, and a backward hook's exception surfaces naming its hook"
        <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            let tokens = expected.["tokens"]
            Expect.throws (fun () ->
                use _ = model.Hooks [ HookSpec.Backward("blocks.0.hook_resid_mid", HookFunction(fun _ _ -> null)) ]
                failwith "boom") "the body throws"
            Expect.isFalse (model.Hook("blocks.0.hook_resid_mid").HasHooks) "removed after the exception"
            let failing = HookFunction(fun _ _ -> invalidOp "bad gradient")
            let e =
                Expect.throwsC (fun () ->
                    use _ = model.Hooks [ HookSpec.Backward("blocks.1.hook_attn_out", failing) ]
                    use run = model.Backward(tokens, Func<torch.Tensor, torch.Tensor>(fun logits -> logits.sum()))
                    ()) id
            Expect.stringContains e.Message "blocks.1.hook_attn_out" "the error names the hook"
            Expect.stringContains e.Message "bad gradient" "and says what went wrong"
            Expect.isFalse (model.Hook("blocks.1.hook_attn_out").HasHooks) "removed after the failed backward"
            use loss = model.Loss tokens
            expectClose 1e-5 "the model still works" loss expected.["loss_mean"]
            disposeAll expected

        testCase "forward hooks that replace activations stay differentiable; a detached replacement cuts the gradient"
        <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            let tokens = expected.["tokens"]
            (
                use _ = model.Hooks [ HookSpec.Named("blocks.0.hook_attn_out", HookFunction(fun x _ -> x * 1.0)) ]
                use run = model.RunWithCache(tokens, ReturnType.Loss, includeBackward = true)
                expectRelMax 1e-5 "blocks.0.attn.hook_z_grad through a replaced attn_out"
                    run.Cache.["blocks.0.attn.hook_z_grad"] expected.["blocks.0.attn.hook_z_grad"] |> ignore
            )
            (
                use _ =
                    model.Hooks [ HookSpec.Named("blocks.0.hook_attn_out",
                                                 HookFunction(fun x _ -> x.detach().clone())) ]
                use run = model.RunWithCache(tokens, ReturnType.Loss, includeBackward = true)
                use z = run.Cache.["blocks.0.attn.hook_z_grad"].abs().max()
                Expect.equal (scalarOf z) 0.0 "a constant replacement passes no gradient to what it replaced"
                expectRelMax 1e-5 "blocks.1.attn.hook_z_grad is unchanged" run.Cache.["blocks.1.attn.hook_z_grad"]
                    expected.["blocks.1.attn.hook_z_grad"] |> ignore
            )
            disposeAll expected

        testCase ("Backward(metric) differentiates any scalar metric of the logits: hook_z gradients of the logit "
                  + "difference match TransformerLens") <| fun () ->
            let attribution = oracle.Expected "attribution.safetensors"
            use model = oracle.Model()
            use run =
                model.Backward(attribution.["corrupted_tokens"], logitDiff attribution,
                               HookedTransformer.NamesFilter("blocks.*.attn.hook_z"))
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } run.Metric.Value
                (scalarOf attribution.["metric_corrupted"]) "the metric's value"
            for l in 0 .. 1 do
                let n = sprintf "blocks.%d.attn.hook_z" l
                expectClose 1e-5 n run.Cache.[n] attribution.[n + ".corrupted"]
                expectRelMax 1e-5 (n + "_grad") run.Cache.[n + "_grad"] attribution.[n + ".grad_corrupted"] |> ignore
            Expect.equal (run.Cache.Count) 4 "two activations and their gradients"
            disposeAll attribution

        testCase ("attribution patching of every head's hook_z matches TransformerLens within 1e-5, beside the true "
                  + "patching effects") <| fun () ->
            let attribution = oracle.Expected "attribution.safetensors"
            use model = oracle.Model()
            use ap =
                AttributionPatching.Run(model, attribution.["clean_tokens"], attribution.["corrupted_tokens"],
                                        logitDiff attribution)
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } ap.CleanMetric (scalarOf attribution.["metric_clean"])
                "clean metric"
            use cmp = ap.Compare("z", [| "layer"; "head" |])
            expectClose 1e-5 "attribution" cmp.Attribution.Values attribution.["attribution"]
            expectClose 1e-5 "patching effect" cmp.ActivationPatching.Values attribution.["patching_effect"]
            let err = maxAbsDiff cmp.Attribution.Values attribution.["attribution"]
            Expect.floatClose { absolute = 1e-4; relative = 0.0 } cmp.Pearson 0.9655592900657421
                "Pearson as the fixture reports"
            Expect.floatClose { absolute = 1e-9; relative = 0.0 } cmp.Spearman 0.988235294117647
                "Spearman as the fixture reports"
            eprintfn "attribution parity: max |diff| %.3g; Pearson %.4f, Spearman %.4f" err cmp.Pearson cmp.Spearman
            disposeAll attribution

        testCase "finer splits sum to coarser ones (by position, by destination position, by layer)" <| fun () ->
            let attribution = oracle.Expected "attribution.safetensors"
            use model = oracle.Model()
            use ap =
                AttributionPatching.Run(model, attribution.["clean_tokens"], attribution.["corrupted_tokens"],
                                        logitDiff attribution)
            use byHead = ap.AttnHeadOutAllPos()
            use byPosHead = ap.AttnHeadOutByPos()
            Expect.sequenceEqual byPosHead.AxisNames [ "layer"; "pos"; "head" ] "axes"
            use s1 = byPosHead.Values.sum(1L)
            expectClose 1e-9 "z by position, summed" s1 byHead.Values
            use pattern = ap.AttnHeadPatternAllPos()
            use byDest = ap.AttnHeadPatternByDestPos()
            use s2 = byDest.Values.sum(2L)
            expectClose 1e-9 "pattern by destination, summed" s2 pattern.Values
            use resid = ap.ResidPre()
            use whole = ap.Attribute("resid_pre", [| "layer" |])
            use s3 = resid.Values.sum(1L)
            expectClose 1e-9 "resid_pre by position, summed" s3 whole.Values
            for split in [ ap.AttnOut(); ap.MlpOut(); ap.ResidMid(); ap.AttnHeadQAllPos(); ap.AttnHeadKAllPos();
                           ap.AttnHeadVAllPos() ] do
                use s = split
                Expect.equal s.Values.shape.[0] 2L "one row per layer"
            Expect.throwsC (fun () -> ap.Attribute("resid_pre", [| "layer"; "head" |]) |> ignore)
                (fun e -> Expect.stringContains e.Message "has no 'head' axis" "names the missing axis")
            disposeAll attribution
    ]

/// Induction on the demo model: clean = BOS + A + A, corrupted = BOS + B + A (the second half no longer
/// repeats); the metric is the mean logit of the clean next token over the second half. (With the mean
/// log-probability instead, the linear estimate misses how far a broken previous-token head drags the
/// log-probability down: Pearson 0.60, Spearman 0.98 measured.)
let demoInduction () =
    let model = ModelLoader.Load "demo-attn-only-2l"
    let n = 20
    use clean = RepeatedTokens.ForModel(model, n, 2, 4, 1UL)
    use other = RepeatedTokens.ForModel(model, n, 2, 4, 2UL)
    let cleanTokens = clean.Tokens.clone()
    let corrupted = cleanTokens.clone()
    (use first = corrupted.narrow(1, 1L, int64 n) in
     use replacement = other.Tokens.narrow(1, 1L, int64 n) in
     first.copy_(replacement) |> ignore)
    let targets = cleanTokens.narrow(1, int64 n + 2L, int64 (n - 1)).clone()
    let metric =
        Func<torch.Tensor, torch.Tensor>(fun logits ->
            let secondHalf = logits.narrow(1, int64 n + 1L, int64 (n - 1))
            secondHalf.gather(-1, targets.unsqueeze(-1)).mean())
    model, cleanTokens, corrupted, metric

let demoTests =
    testList "demo model" [
        testCase "attribution patching of every head for an induction metric correlates with true activation patching"
        <| fun () ->
            use scope = torch.NewDisposeScope()
            let model, clean, corrupted, metric = demoInduction ()
            use _ = model
            use ap = AttributionPatching.Run(model, clean, corrupted, metric)
            Expect.isGreaterThan (ap.CleanMetric - ap.CorruptedMetric) 10.0
                "the corruption breaks induction (measured: 15.0 → 0.06)"
            use cmp = ap.Compare("z", [| "layer"; "head" |])
            eprintfn "demo induction, every head's hook_z: Pearson %.4f, Spearman %.4f" cmp.Pearson cmp.Spearman
            // Measured: Pearson 0.905, Spearman 0.905 (8 heads).
            Expect.isGreaterThan cmp.Pearson 0.88 "Pearson"
            Expect.isGreaterThan cmp.Spearman 0.88 "Spearman"
    ]

let integratedGradientsTests =
    let oracle = Oracle "grads"
    testList "integrated gradients" [
        testCase ("attributions over blocks.0.hook_resid_post sum to the metric difference, within an error that "
                  + "shrinks as 1/steps²") <| fun () ->
            let attribution = oracle.Expected "attribution.safetensors"
            use model = oracle.Model()
            let metric = logitDiff attribution
            let clean, corrupted = attribution.["clean_tokens"], attribution.["corrupted_tokens"]
            use corruptedRun = model.RunWithCache(corrupted, HookedTransformer.NamesFilter("blocks.0.hook_resid_post"))
            let baseline = corruptedRun.Cache.["blocks.0.hook_resid_post"]
            use coarse = IntegratedGradients.Run(model, clean, "blocks.0.hook_resid_post", metric, baseline, 4)
            use fine = IntegratedGradients.Run(model, clean, "blocks.0.hook_resid_post", metric, baseline, 32)
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } fine.MetricAtInput
                (scalarOf attribution.["metric_clean"]) "metric at the input (the clean run)"
            Expect.floatClose { absolute = 1e-6; relative = 0.0 } fine.MetricAtBaseline
                (scalarOf attribution.["metric_corrupted"])
                "metric at the baseline (the corrupted activation patched in: the corrupted run)"
            Expect.sequenceEqual fine.Attributions.shape [| 2L; 10L; 64L |] "one attribution per element"
            eprintfn "integrated gradients completeness error: %.3g (4 steps), %.3g (32 steps); metric difference %.4f"
                coarse.CompletenessError fine.CompletenessError (fine.MetricAtInput - fine.MetricAtBaseline)
            Expect.isLessThan fine.CompletenessError (coarse.CompletenessError / 10.0)
                "8× the steps cuts the error by well over 10×"
            fine.CheckCompleteness 1e-3
            Expect.throwsT<InvalidOperationException> (fun () -> coarse.CheckCompleteness 1e-9)
                "a missed completeness check is an error"
            disposeAll attribution
    ]

module Dsl = Lens.Tests.DslRuntimeTests

let languageTests =
    testList "experiment language" [
        testCase "attribute patch parses beside patch and prints back" <| fun () ->
            let text =
                ("let clean = input \"When John and Mary went to the store, Mary gave a drink to\"\n"
                 + "attribute patch heads from clean metric logit_diff \" Mary\" \" John\"\n"
                 + "attribute patch resid_pre from tokens [1, 2]\n")
            let script = Lens.Dsl.Parser.Parse(text, "t.lens")
            let statements = script.Statements |> List.ofSeq
            Expect.equal statements.[1]
                (Lens.Dsl.AttributePatchStatement(Lens.Dsl.PatchTarget.Heads, Lens.Dsl.InputName("clean"),
                                                  Lens.Dsl.LogitDiffMetric(Lens.Dsl.TokenText(" Mary"),
                                                                           Lens.Dsl.TokenText(" John")))
                  :> Lens.Dsl.Statement) "heads, a let-bound source, logit_diff"
            Expect.equal (Lens.Dsl.Printer.Print statements.[2])
                "attribute patch resid_pre from tokens [1, 2] metric loss" "the default metric is printed"
            Expect.equal
                (Lens.Dsl.Printer.Print (Lens.Dsl.Parser.Parse("attribute to 7 vs 9", "t.lens").Statements.[0]))
                "attribute to 7 vs 9" "plain attribute still parses"

        testCase "attribute patch equals the library's attribution patching, with the clean and corrupted baselines"
        <| fun () ->
            let text =
                Dsl.tinyModel + "input tokens [[3, 14, 15, 92, 65], [35, 89, 79, 32, 38]]\n"
                + ("attribute patch heads from tokens [[3, 14, 15, 92, 66], [35, 89, 79, 32, 37]] metric logit_diff 7 "
                   + "9\n")
                + "attribute patch blocks from tokens [[3, 14, 15, 92, 66], [35, 89, 79, 32, 37]]\n"
            let state = Dsl.run text
            use model = HookedTransformer.Load Dsl.tinyDir
            use corrupted = torch.tensor([| 3L; 14L; 15L; 92L; 65L; 35L; 89L; 79L; 32L; 38L |]).reshape(2L, 5L)
            use clean = torch.tensor([| 3L; 14L; 15L; 92L; 66L; 35L; 89L; 79L; 32L; 37L |]).reshape(2L, 5L)
            use ap =
                AttributionPatching.Run(model, clean, corrupted,
                                        LogitDifference.Differentiable(torch.tensor 7L, torch.tensor 9L))
            use heads = ap.AttnHeadOutAllPos()
            let reported = state.Results |> Seq.filter (fun r -> r.Command = "attribute") |> List.ofSeq
            let viaDsl, direct = Dsl.flatGrid (Dsl.grid reported.[0]), Dsl.asReported heads.Values
            Array.iter2 (fun a b -> Expect.floatClose { absolute = 1e-6; relative = 1e-5 } a b "attribution of heads")
                viaDsl direct
            Expect.equal (reported.[0].Value.Summary |> Seq.map (fun kv -> kv.Key) |> List.ofSeq)
                [ "clean"; "corrupted" ] "baselines"
            match reported.[1].Value with
            | :? Lens.Dsl.Runtime.TensorValue as t ->
                Expect.equal t.Axes [| "component"; "layer"; "pos" |] "blocks: component × layer × position"
            | other -> failtestf "attribute patch blocks gave %s" other.Kind

        testCase "lens run --json gives values[layer][head] for attribute patch heads on the demo model" <| fun () ->
            let dir = IO.Path.Combine(IO.Path.GetTempPath(), "lens-ap-" + Guid.NewGuid().ToString("N"))
            IO.Directory.CreateDirectory dir |> ignore
            try
                let file = IO.Path.Combine(dir, "ioi.lens")
                let corruptedText, cleanText =
                    "When Mary and John went to the store, John gave a drink to", ("When John and Mary went to the "
                                                                                   + "store, Mary gave a drink to")
                IO.File.WriteAllText(file,
                                     sprintf
                                         "let clean = input \"%s\"\ninput \"%s\"\n\
                                          attribute patch heads from clean metric logit_diff \" Mary\" \" John\"\n"
                                              cleanText corruptedText)
                let out = IO.Path.Combine(dir, "out.json")
                let r = Processes.lens [ "run"; file; "--json"; out ]
                Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
                Expect.stringContains r.Stdout "attribute patch heads" "the table is printed"
                use doc = Text.Json.JsonDocument.Parse(IO.File.ReadAllText out)
                let res = doc.RootElement.GetProperty("results").[0]
                Expect.equal (res.GetProperty("kind").GetString()) "layer_head_table" "a layer × head table"
                let values =
                    [| for row in res.GetProperty("values").EnumerateArray() ->
                        [| for v in row.EnumerateArray() -> v.GetDouble() |] |]
                use model = ModelLoader.Load "demo-attn-only-2l"
                use clean = model.ToTokens cleanText
                use corrupted = model.ToTokens corruptedText
                let mary, john = model.ToSingleToken " Mary", model.ToSingleToken " John"
                use ap =
                    AttributionPatching.Run(model, clean, corrupted,
                                            LogitDifference.Differentiable(torch.tensor mary, torch.tensor john))
                use heads = ap.AttnHeadOutAllPos()
                Expect.equal values.Length 2 "values[layer]"
                for l in 0 .. 1 do
                    Expect.equal values.[l].Length 4 "values[layer][head]"
                    for h in 0 .. 3 do
                        Expect.floatClose { absolute = 1e-6; relative = 1e-5 } values.[l].[h] (heads.[int64 l, int64 h])
                            (sprintf "L%dH%d" l h)
            finally
                IO.Directory.Delete(dir, true)
    ]

[<Tests>]
let tests = testList "gradients" [ oracleTests; demoTests; integratedGradientsTests; languageTests ]
