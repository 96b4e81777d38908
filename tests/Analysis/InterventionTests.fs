/// Ablations (zero, mean, resample) and activation patching: their semantics, checked on the oracle models.
module Lens.Tests.InterventionTests

open System
open Expecto
open TorchSharp
open Lens
open Lens.Analysis
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

let withModel (set: string) (body: HookedTransformer -> torch.Tensor -> unit) () =
    let oracle = Oracle set
    let expected = oracle.Expected "expected.safetensors"
    use model = oracle.Model()
    try body model expected.["tokens"]
    finally disposeAll expected

/// Other token ids of the same shape, from Lens's own generator.
let otherTokens (batch: int) (pos: int) (seed: uint64) =
    use r = RepeatedTokens.Generate(97L, pos, repeats = 1, batch = batch, seed = seed)
    r.Tokens.clone()

/// The clean run's tokens with one position changed in every example.
let corruptAt (tokens: torch.Tensor) (pos: int64) =
    let corrupted = tokens.clone()
    use column = corrupted.select(1L, pos)
    use shifted = (column + 1L).remainder(torch.tensor(97L))
    column.copy_(shifted) |> ignore
    corrupted

/// The metric of these tests: the mean logit of token 5 at the last position.
let metric = Func<torch.Tensor, float>(fun logits ->
    logits.[torch.TensorIndex.Colon, torch.TensorIndex.Single(-1L), torch.TensorIndex.Single(5L)]
        .mean().to_type(torch.float64).item<float>())

let runWith (model: HookedTransformer) (tokens: torch.Tensor) (ablations: Ablation list) =
    use hooks = Ablation.Prepare(model, ablations)
    use _ = model.Hooks(hooks.Specs)
    model.RunWithCache(tokens)

/// Equal up to float32 rounding: a run whose hooks need attention scores, patterns or LayerNorm
/// internals (e.g. a full RunWithCache) computes them explicitly, one with other hooks uses the fused
/// kernels; the two agree to ~1e-7, not bit for bit.
let allEqual (what: string) (value: float) (result: PatchingResult) =
    use v = result.Values.flatten()
    for x in v.data<float>().ToArray() do Expect.floatClose { absolute = 1e-5; relative = 1e-5 } x value what

[<Tests>]
let tests =
    testList "interventions" [
        testCase "mean ablation puts the reference run's mean over batch and positions everywhere"
        <| withModel "gpt2like" (fun model tokens ->
            use reference = otherTokens 3 12 21UL
            use clean = model.RunWithCache(tokens)
            use refRun = model.RunWithCache(reference)
            use run = runWith model tokens [ Ablation.Mean(AblationTarget.Head(1, 2), reference) ]
            use z = run.Cache.["z", 1].select(2L, 2L)
            use mean = refRun.Cache.["z", 1].select(2L, 2L).mean([| 0L; 1L |]).expand(z.shape)
            expectClose 1e-6 "head 2's z is the reference mean at every example and position" z mean
            use others = run.Cache.["z", 1].narrow(2L, 0L, 2L)
            use cleanOthers = clean.Cache.["z", 1].narrow(2L, 0L, 2L)
            expectClose 0.0 "the other heads of that layer are untouched" others cleanOthers
            use mlpRun = runWith model tokens [ Ablation.Mean(AblationTarget.Mlp(0), tokens) ]
            use cleanMean = clean.Cache.["mlp_out", 0].mean([| 0L; 1L |]).expand(clean.Cache.["mlp_out", 0].shape)
            expectClose 1e-6 "a mean-ablated MLP writes its own mean" mlpRun.Cache.["mlp_out", 0] cleanMean)

        testCase "resample ablation takes each example from a seeded row of the source input, deterministically"
        <| withModel "gpt2like" (fun model tokens ->
            use source = otherTokens 3 12 22UL
            use sourceRun = model.RunWithCache(source)
            let ablation = Ablation.Resample(AblationTarget.Head(0, 1), source, 9UL)
            use run = runWith model tokens [ ablation ]
            let rows = AblationHooks.ResampleRows(9UL, 2L, 3L)
            let expectedRows = let r = SplitMix64(9UL) in [| r.NextBelow(3L); r.NextBelow(3L) |]
            Expect.sequenceEqual rows expectedRows "rows are SplitMix64(seed).NextBelow(source batch) per example"
            for b in 0 .. 1 do
                use got = run.Cache.["z", 0].select(0L, int64 b).select(1L, 1L)
                use want = sourceRun.Cache.["z", 0].select(0L, rows.[b]).select(1L, 1L)
                // fused vs explicit path
                expectClose 1e-5 (sprintf "example %d takes source row %d" b rows.[b]) got want
            use again = Ablation.Run(model, tokens, [ ablation ], ReturnType.Logits)
            expectClose 1e-5 "the same seed gives the same logits" again.Logits run.Logits // fused vs explicit path
            use self = tokens.narrow(0L, 0L, 1L)
            use selfRun = model.RunWithCache(self)
            use noOp =
                Ablation.Run(model, self, [ Ablation.Resample(AblationTarget.Block(0), self, 1UL) ], ReturnType.Logits)
            // fused vs explicit path
            expectClose 1e-5 "resampling an input from itself changes nothing" noOp.Logits selfRun.Logits
            use short = otherTokens 1 6 23UL
            use mismatched = Ablation.Resample(AblationTarget.Head(0, 1), short, 1UL).Prepare(model)
            use _ = model.Hooks(mismatched.Specs)
            Expect.throwsT<ArgumentException> (fun () -> model.Forward(tokens) |> ignore)
                "a source with other positions is refused")

        testCase "zero ablation of blocks, attention layers, MLPs and neurons removes exactly those writes"
        <| withModel "gpt2like" (fun model tokens ->
            use clean = model.RunWithCache(tokens)
            use block = runWith model tokens [ Ablation.Zero(AblationTarget.Block(0)) ]
            expectClose 0.0 "a zeroed block passes resid_pre through" block.Cache.["resid_post", 0]
                block.Cache.["resid_pre", 0]
            use attn = runWith model tokens [ Ablation.Zero(AblationTarget.AttentionLayer(1)) ]
            expectClose 0.0 "a zeroed attention layer adds nothing" attn.Cache.["resid_mid", 1]
                attn.Cache.["resid_pre", 1]
            use mlp = runWith model tokens [ Ablation.Zero(AblationTarget.Mlp(1)) ]
            expectClose 0.0 "a zeroed MLP adds nothing" mlp.Cache.["resid_post", 1] mlp.Cache.["resid_mid", 1]
            use neuron =
                runWith model tokens [ Ablation.Zero(AblationTarget.Neuron(0, 5));
                                       Ablation.Zero(AblationTarget.Neuron(0, 7)) ]
            use five = neuron.Cache.["post", 0].select(-1L, 5L)
            use seven = neuron.Cache.["post", 0].select(-1L, 7L)
            use zeros = torch.zeros_like(five)
            expectClose 0.0 "neuron 5 is zero" five zeros
            expectClose 0.0 "neuron 7 is zero" seven zeros
            use six = neuron.Cache.["post", 0].select(-1L, 6L)
            use cleanSix = clean.Cache.["post", 0].select(-1L, 6L)
            expectClose 0.0 "neuron 6 is untouched" six cleanSix
            Expect.equal (model.HookDict.Values |> Seq.sumBy (fun h -> h.HookCount)) 0 "no hooks stay behind")

        testCase "ablation targets outside the model are clear errors" <| withModel "attnonly" (fun model tokens ->
            Expect.throwsT<ArgumentOutOfRangeException> (fun () ->
                Ablation.Zero(AblationTarget.Head(0, 4)).Prepare(model) |> ignore) "head out of range"
            Expect.throwsT<ArgumentOutOfRangeException> (fun () ->
                Ablation.Zero(AblationTarget.AttentionLayer(2)).Prepare(model) |> ignore) "layer out of range"
            Expect.throwsT<InvalidOperationException> (fun () ->
                Ablation.Zero(AblationTarget.Mlp(0)).Prepare(model) |> ignore) "attention-only: no MLP"
            use blockOnly = Ablation.Zero(AblationTarget.Block(1)).Prepare(model)
            Expect.equal blockOnly.Specs.Count 1 "an attention-only block has only attn_out to ablate")

        testCase "patching with no corruption has no effect: every entry is the clean metric"
        <| withModel "gpt2like" (fun model tokens ->
            use clean = model.RunWithCache(tokens)
            let cleanMetric = metric.Invoke clean.Logits
            use resid = Patching.ResidPre(model, tokens, clean.Cache, metric)
            Expect.sequenceEqual resid.Values.shape [| 2L; 12L |] "[layer, pos]"
            Expect.sequenceEqual resid.AxisNames [ "layer"; "pos" ] "axis names"
            allEqual "resid_pre" cleanMetric resid
            use heads = Patching.AttnHeadOutAllPos(model, tokens, clean.Cache, metric)
            Expect.sequenceEqual heads.Values.shape [| 2L; 4L |] "[layer, head]"
            allEqual "head outputs" cleanMetric heads
            use every = Patching.GetActPatchBlockEvery(model, tokens, clean.Cache, metric)
            Expect.sequenceEqual every.Values.shape [| 3L; 2L; 12L |] "[component, layer, pos]"
            Expect.sequenceEqual every.AxisLabels.[0] [ "resid_pre"; "attn_out"; "mlp_out" ] "component labels"
            allEqual "block every" cleanMetric every)

        testCase ("patching the clean activation where the inputs differ, or at every position, recovers the clean "
                  + "metric exactly") <| withModel "gpt2like" (fun model tokens ->
            use clean = model.RunWithCache(tokens)
            let cleanMetric = metric.Invoke clean.Logits
            use corrupted = corruptAt tokens 4L
            use corruptedLogits = model.Forward(corrupted)
            let corruptedMetric = metric.Invoke corruptedLogits
            Expect.notEqual cleanMetric corruptedMetric "the corruption matters"
            use resid = Patching.ResidPre(model, corrupted, clean.Cache, metric)
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } resid.[0L, 4L] cleanMetric
                "layer 0, the corrupted position: the whole stream becomes clean"
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } resid.[0L, 7L] corruptedMetric
                "layer 0 elsewhere: the clean value equals the corrupted one"
            let everywhere = PatchSetter(fun corruptedAct _ cleanAct -> corruptedAct.copy_(cleanAct) |> ignore)
            for name in [ "resid_pre"; "resid_mid"; "resid_post" ] do
                use all = Patching.Generic(model, corrupted, clean.Cache, metric, name, [ "layer" ], everywhere)
                allEqual (sprintf "%s patched at every position" name) cleanMetric all
            use byPos = Patching.AttnHeadOutByPos(model, corrupted, clean.Cache, metric)
            Expect.sequenceEqual byPos.AxisNames [ "layer"; "pos"; "head" ] "[layer, pos, head]"
            Expect.sequenceEqual byPos.Values.shape [| 2L; 12L; 4L |] "shape"
            let manualHook = HookFunction(fun z _ ->
                let patched = z.clone()
                use slot = patched.select(1L, 9L).select(1L, 3L)
                use cleanSlot = clean.Cache.["z", 1].select(1L, 9L).select(1L, 3L)
                slot.copy_(cleanSlot) |> ignore
                patched)
            use manual = model.RunWithHooks(corrupted, struct ("blocks.1.attn.hook_z", manualHook))
            Expect.equal byPos.[1L, 9L, 3L] (metric.Invoke manual) "an entry is the metric of that one patched run")

        testCase "patching refuses mismatched inputs, and attention-only models patch what they have"
        <| withModel "attnonly" (fun model tokens ->
            use clean = model.RunWithCache(tokens)
            use every = Patching.GetActPatchBlockEvery(model, tokens, clean.Cache, metric)
            Expect.sequenceEqual every.AxisLabels.[0] [ "resid_pre"; "attn_out" ] "no mlp_out"
            use attnOut = every.Select("attn_out")
            Expect.sequenceEqual attnOut.AxisNames [ "layer"; "pos" ] "a component of the stack"
            Expect.throwsT<InvalidOperationException> (fun () ->
                Patching.MlpOut(model, tokens, clean.Cache, metric) |> ignore) "no MLP"
            use shorter = tokens.narrow(1L, 0L, 8L)
            Expect.throwsT<ArgumentException> (fun () ->
                Patching.ResidPre(model, shorter, clean.Cache, metric) |> ignore) "clean and corrupted differ in shape"
            use filtered = model.RunWithCache(tokens, HookedTransformer.NamesFilter("blocks.*.hook_attn_out"))
            Expect.throwsT<Collections.Generic.KeyNotFoundException> (fun () ->
                Patching.ResidPre(model, tokens, filtered.Cache, metric) |> ignore) "the clean cache lacks resid_pre")
    ]
