module Lens.Tests.TrainingTests

open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.Training

/// A tiny model and task: sequences counting up modulo 16 from a random start, learnable by a previous-token copy.
let private tinyConfig (attnOnly: bool) =
    HookedTransformerConfig(NLayers = 2, DModel = 32, NHeads = 4, DHead = 8, NCtx = 24, DVocab = 16,
                            AttnOnly = attnOnly,
                            ActFn = "gelu_new", Seed = System.Nullable 3)

let private countingBatches =
    GeneratedBatches(fun batch g ->
        use starts = torch.randint(0L, 16L, [| int64 batch; 1L |], dtype = torch.int64, generator = g)
        use steps = torch.arange(20L, dtype = torch.int64).unsqueeze(0)
        (starts + steps).remainder(torch.tensor(16L)))

let private options steps seed =
    TrainingOptions(Steps = steps, BatchSize = 8, Lr = 3e-3, WarmupSteps = 5, Seed = seed, Progress = false)

let private evalLoss (model: HookedTransformer) =
    use g = new torch.Generator(99UL)
    use tokens = (countingBatches :> IBatchSource).NextBatch(32, g)
    use loss = model.Loss(tokens)
    loss.item<float32>()

[<Tests>]
let tests =
    testList "training" [
        testCase "gradients reach every parameter through the dispose scopes of the components" <| fun () ->
            use model = new HookedTransformer(tinyConfig false)
            model.RequiresGrad(true) |> ignore
            use g = new torch.Generator(2UL)
            use tokens = (countingBatches :> IBatchSource).NextBatch(4, g)
            use loss = model.Loss(tokens)
            Expect.isTrue loss.requires_grad "the loss is part of an autograd graph"
            loss.backward()
            for (name, p) in model.Parameters() |> Seq.map (fun struct (n, p) -> n, p) do
                use grad = p.grad
                Expect.isNotNull grad (sprintf "%s has a gradient" name)
                use norm = grad.norm()
                // b_K shifts every score of a query equally, which softmax ignores: its gradient is zero by
                // construction.
                if not (name.EndsWith "b_K") then
                    Expect.isGreaterThan (norm.item<float32>()) 0.0f (sprintf "%s gradient is non-zero" name)
            model.RequiresGrad(false) |> ignore

        testCase "parameters do not require gradients by default, and analysis builds no graph" <| fun () ->
            use model = new HookedTransformer(tinyConfig true)
            for struct (name, p) in model.Parameters() do Expect.isFalse p.requires_grad name
            use tokens = torch.zeros(1L, 5L, dtype = torch.int64)
            use loss = model.Loss(tokens)
            Expect.isFalse loss.requires_grad "no graph"

        testCase "the loss falls on a tiny task (counting modulo 16), and flags are restored afterwards" <| fun () ->
            use model = new HookedTransformer(tinyConfig true)
            let before = evalLoss model
            let result = Trainer.Train(model, countingBatches, options 150 1L)
            let after = evalLoss model
            printfn "tiny task: loss %.3f -> %.3f in %d steps (%.1f s)" before after result.Steps
                result.Elapsed.TotalSeconds
            Expect.equal result.Steps 150 "all steps ran"
            Expect.equal result.Losses.Count 150 "one loss per step"
            Expect.isLessThan after (0.25f * before) "the loss fell to under a quarter"
            for struct (name, p) in model.Parameters() do
                Expect.isFalse p.requires_grad (name + " is back to no gradient")

        testCase "training is reproducible: the same seed gives the same losses bit for bit, another seed others"
        <| fun () ->
            let run seed =
                use model = new HookedTransformer(tinyConfig true)
                (Trainer.Train(model, countingBatches, options 30 seed)).Losses |> Seq.toArray
            let a, b, c = run 1L, run 1L, run 2L
            Expect.sequenceEqual a b "same seed"
            Expect.notEqual a c "other seed"

        testCase "a dataset tensor is sampled by rows; checkpoints are written every N steps and load back" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), sprintf "lens-train-%s" (System.Guid.NewGuid().ToString("N")))
            try
                use model = new HookedTransformer(tinyConfig true)
                use dataset = torch.arange(320L, dtype = torch.int64).reshape(16L, 20L).remainder(torch.tensor(16L))
                let opts =
                    TrainingOptions(Steps = 10, BatchSize = 4, CheckpointEvery = 4, CheckpointDir = dir,
                                    Progress = false)
                let result = Trainer.Train(model, dataset, opts)
                Expect.sequenceEqual (result.Checkpoints |> Seq.map Path.GetFileName) [ "step-000004"; "step-000008" ]
                    "checkpoints"
                use back = HookedTransformer.Load(result.Checkpoints.[1])
                Expect.equal back.Config.DVocab 16 "loads back"
            finally
                if Directory.Exists dir then Directory.Delete(dir, true)

        testCase "early stop: StopWhen is asked every EvalEvery steps without gradients" <| fun () ->
            use model = new HookedTransformer(tinyConfig true)
            let mutable asked = []
            let opts =
                TrainingOptions(Steps = 50, BatchSize = 4, Progress = false, EvalEvery = 10,
                                StopWhen = System.Func<_, _, _>(fun (m: HookedTransformer) step ->
                                    use t = torch.zeros(1L, 3L, dtype = torch.int64)
                                    use l = m.Loss(t)
                                    Expect.isFalse l.requires_grad "no graph while evaluating"
                                    asked <- step :: asked
                                    step >= 30))
            let result = Trainer.Train(model, countingBatches, opts)
            Expect.equal (List.rev asked) [ 10; 20; 30 ] "asked at 10, 20, 30"
            Expect.equal result.Steps 30 "stopped at 30"
            Expect.isTrue result.StoppedEarly "stopped early"

        testCase "the learning rate rises linearly over the warm-up, then holds" <| fun () ->
            let o = TrainingOptions(Lr = 1e-3, WarmupSteps = 4)
            let lrs = [ for s in 0 .. 5 -> Trainer.LearningRate(o, s) ]
            Expect.sequenceEqual lrs [ 2.5e-4; 5e-4; 7.5e-4; 1e-3; 1e-3; 1e-3 ] "schedule"
            Expect.equal (Trainer.LearningRate(TrainingOptions(Lr = 1e-3), 0)) 1e-3 "no warm-up"

        testCase "a cosine schedule falls from lr after the warm-up to min_lr at the last step" <| fun () ->
            let o = TrainingOptions(Lr = 1e-3, MinLr = 1e-4, WarmupSteps = 2, Steps = 7, Schedule = LrSchedule.Cosine)
            let lrs = [ for s in 0 .. 6 -> Trainer.LearningRate(o, s) ]
            let expected =
                [ 5e-4; 1e-3 ] @ [ for t in 0.0 .. 0.25 .. 1.0 -> 1e-4 + 0.5 * 9e-4 * (1.0 + cos (System.Math.PI * t)) ]
            for (a, e) in List.zip lrs expected do Expect.floatClose Accuracy.veryHigh a e "cosine schedule"
            Expect.floatClose Accuracy.veryHigh lrs.[6] 1e-4 "ends at min_lr"
            Expect.throws (fun () ->
                Trainer.Train(new HookedTransformer(tinyConfig true), torch.zeros(2L, 4L, dtype = torch.int64),
                              TrainingOptions(Lr = 1e-3, MinLr = 1e-2)) |> ignore) "min_lr above lr is refused"

        testCase "bad options are clear errors" <| fun () ->
            use model = new HookedTransformer(tinyConfig true)
            let err (o: TrainingOptions) (needle: string) =
                match (try Trainer.Train(model, countingBatches, o) |> ignore; None
                       with :? System.ArgumentException as e -> Some e.Message) with
                | Some m -> Expect.stringContains m needle "message"
                | None -> failtestf "expected an error about %s" needle
            err (TrainingOptions(Lr = -1.0)) "learning rate"
            err (TrainingOptions(BatchSize = 0)) "batch size"
            err (TrainingOptions(CheckpointEvery = 5)) "checkpoint folder"
            use floats = torch.zeros(4L, 5L)
            Expect.throwsT<System.ArgumentException> (fun () -> TensorBatches(floats) |> ignore) "float dataset"
    ]
