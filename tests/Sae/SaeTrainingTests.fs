/// Training SAEs with SAELens 6.18's trainer (src/Core.CSharp/Sae/Training): its schedules, the three
/// architectures' training forwards, dead-latent tracking and AuxK, checkpoints in SAELens's layout that
/// Lens's loader reads back to the same outputs, the model-hook activation stream, `lens sae train`.
module Lens.Tests.SaeTrainingTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open Lens
open Lens.Sae
open Lens.Sae.Training
open Lens.Tests.TestSupport
open Lens.Tests.Processes

let private scratch = scratchFolder "lens-sae-training-tests"

/// A fresh folder, removed when the test process exits.
let tempFolder () = freshFolderIn scratch "sae-train"

/// Activations that are sparse sums of a hidden dictionary: each row mixes about 3 of nTrue unit directions.
let synthetic (dIn: int) (nTrue: int) (seed: uint64) =
    let g = new torch.Generator(seed)
    let dictionary =
        use d = torch.randn([| int64 nTrue; int64 dIn |], generator = g)
        (d / d.norm(1, true)).DetachFromDisposeScope()
    { new IActivationSource with
        member _.DIn = dIn
        member _.NextBatch n =
            use _scope = torch.NewDisposeScope()
            let on = torch.rand([| int64 n; int64 nTrue |], generator = g).lt((3.0 / float nTrue).ToScalar())
            let magnitude = torch.rand([| int64 n; int64 nTrue |], generator = g).add((0.5).ToScalar())
            (magnitude * on.``to``(torch.float32)).matmul(dictionary).MoveToOuterDisposeScope() }

let metadata hook =
    SaeMetadata(HookName = hook, ModelName = "synthetic", ContextSize = Nullable 1,
                DatasetPath = "synthetic sparse sums")

/// SaeTrainingOptions with F#'s optional arguments (F# cannot use C#'s `with` on a record).
type Opt =
    static member Make(arch: string, dSae: int, steps: int, batch: int, ?k: float, ?l1: float, ?l1Warm: int,
                       ?deadWindow: int,
                       ?nCheckpoints: int, ?checkpointPath: string, ?lr: float, ?trainingTokens: int64, ?warm: int,
                       ?decay: int,
                       ?scheduler: string, ?lrEnd: float) =
        SaeTrainingOptions(Architecture = arch, DSae = dSae, K = defaultArg k 4.0, L1Coefficient = defaultArg l1 1.0,
                           L1WarmUpSteps = defaultArg l1Warm 0,
                           DeadFeatureWindow = defaultArg deadWindow 1000, NCheckpoints = defaultArg nCheckpoints 0,
                           CheckpointPath = defaultArg checkpointPath null,
                           TrainingTokens = defaultArg trainingTokens (int64 (steps * batch)),
                           TrainBatchSizeTokens = batch, Lr = defaultArg lr 3e-3,
                           LrWarmUpSteps = defaultArg warm 0, LrDecaySteps = defaultArg decay 0,
                           LrSchedulerName = defaultArg scheduler "constant",
                           LrEnd = (match lrEnd with Some v -> Nullable v | None -> Nullable()), Seed = 7L,
                           Progress = false)

let options arch dSae steps batch = Opt.Make(arch, dSae, steps, batch)

let throwsSae (f: unit -> unit) =
    try f (); failwith "expected an SaeException"
    with :? SaeException as e -> e

let train (o: SaeTrainingOptions) = SaeTrainer.Train(synthetic 16 32 11UL, o, metadata "blocks.0.hook_resid_post")

let firstKeys (json: string) =
    use doc = JsonDocument.Parse json
    [ for p in doc.RootElement.EnumerateObject() -> p.Name ]

let weightsEqual (a: SparseAutoencoder) (b: SparseAutoencoder) =
    for (x, y) in Seq.zip (a.StateDict()) (b.StateDict()) do
        Expect.equal x.Key y.Key "same tensor names"
        Expect.equal (maxAbsDiff x.Value y.Value) 0.0 (sprintf "%s equal to the bit" x.Key)

[<Tests>]
let tests =
    testList "sae training" [
        testCase ("learning rate: SAELens's warm-up (lr·(s+1)/W), constant or cosine main phase, linear decay to 0 "
                  + "over the last steps") <| fun () ->
            let o = Opt.Make("standard", 8, 20, 1, lr = 1e-3, warm = 4, decay = 4)
            let lrs = [ for s in 0 .. 19 -> SaeSchedules.LearningRate(o, s) ]
            let expected = [ 2.5e-4; 5e-4; 7.5e-4; 1e-3 ] @ List.replicate 12 1e-3 @ [ 1e-3; 7.5e-4; 5e-4; 2.5e-4 ]
            for (a, e) in List.zip lrs expected do
                Expect.floatClose Accuracy.veryHigh a e ("constant schedule (the decay starts from lr: the constant "
                                                         + "schedule ignores lr_end)")
            let c =
                Opt.Make("standard", 8, 20, 1, lr = 1e-3, warm = 4, decay = 4, scheduler = "cosineannealing",
                         lrEnd = 1e-4)
            Expect.floatClose Accuracy.veryHigh (SaeSchedules.LearningRate(c, 4)) 1e-3
                "cosine starts at lr after the warm-up"
            Expect.floatClose Accuracy.veryHigh (SaeSchedules.LearningRate(c, 10)) 5.5e-4
                "half way through its 12 steps: (lr + lr_end)/2"
            Expect.floatClose Accuracy.veryHigh (SaeSchedules.LearningRate(c, 16)) 1e-4 "the decay starts from lr_end"
            Expect.floatClose Accuracy.veryHigh (SaeSchedules.LearningRate(c, 17)) 7.5e-5 "and falls linearly"
            Expect.floatClose Accuracy.veryHigh
                (SaeSchedules.LearningRate(Opt.Make("standard", 8, 20, 1, lr = 1e-3, warm = 4, decay = 4,
                                                    scheduler = "cosineannealing"), 16))
                1e-4 "lr_end defaults to lr / 10"

        testCase "L1 coefficient warm-up: 0 at the first step, final·s/W, the final value from step W on" <| fun () ->
            let o = Opt.Make("standard", 8, 10, 1, l1 = 5.0, l1Warm = 4)
            Expect.equal [ for s in 0 .. 6 -> SaeSchedules.L1Coefficient(o, s) ] [ 0.0; 1.25; 2.5; 3.75; 5.0; 5.0; 5.0 ]
                "CoefficientScheduler"
            Expect.equal (SaeSchedules.L1Coefficient(Opt.Make("standard", 8, 10, 1, l1 = 5.0), 0)) 5.0
                "no warm-up: the final value at once"

        testCase "standard SAE: MSE + decoder-norm-weighted L1, the warm-up's first step has no penalty, the loss falls"
        <| fun () ->
            let o = Opt.Make("standard", 64, 300, 256, l1 = 0.05, l1Warm = 50)
            use r = train o
            let first, last = r.Steps.[0], r.Steps.[r.Steps.Count - 1]
            printfn "standard synthetic: mse %.4f -> %.4f, l1 %.4f, L0 %.2f, EV %.3f, dead %d" (first.Loss "mse_loss")
                (last.Loss "mse_loss") (last.Loss "l1_loss") last.L0 last.ExplainedVariance last.DeadFeatures
            Expect.equal (first.Loss "l1_loss") 0.0 "coefficient 0 at step 1"
            Expect.floatClose Accuracy.high last.OverallLoss (last.Loss "mse_loss" + last.Loss "l1_loss")
                "overall = mse + l1"
            Expect.isLessThan (last.Loss "mse_loss") (first.Loss "mse_loss" / 4.0) "reconstruction improves"
            Expect.isGreaterThan last.ExplainedVariance 0.8 "explains most of the variance"
            Expect.equal r.Sae.Config.Architecture "standard" "saved as standard"

        testCase ("topk: exactly k latents per token while training; the saved SAE (decoder norms folded) encodes and "
                  + "decodes as the training forward") <| fun () ->
            let o = options "topk" 64 200 256
            use r = train o
            let last = r.Steps.[r.Steps.Count - 1]
            printfn "topk synthetic: mse %.4f -> %.4f, L0 %.2f, EV %.3f" (r.Steps.[0].Loss "mse_loss")
                (last.Loss "mse_loss") last.L0 last.ExplainedVariance
            Expect.isLessThanOrEqual last.L0 4.0 "at most k"
            Expect.isGreaterThan last.ExplainedVariance 0.7 "explains most of the variance"
            Expect.isTrue r.Sae.Config.RescaleActsByDecoderNorm ("rescale_acts_by_decoder_norm kept in the config, as "
                                                                 + "SAELens copies it")
            use norms = r.Sae.W_dec.norm(1)
            use ones = torch.ones_like(norms)
            Expect.isLessThan (maxAbsDiff norms ones) 1e-5 "unit-norm decoder rows after folding"
            // the fold is exact algebra: a fresh trainable SAE (decoder rows of norm 0.1) against its inference form
            use g = new torch.Generator(3UL)
            use t = new TrainableSae(o, 16, g)
            use inference = t.ToInference("blocks.0.hook_resid_post", "fresh")
            use x = (synthetic 16 32 5UL).NextBatch 64
            use _scope = torch.NewDisposeScope()
            use dead = torch.zeros([| 64L |], dtype = torch.ScalarType.Bool)
            let step = t.Forward(x, 0.0, dead)
            expectClose 1e-5 "feature activations" (inference.Encode x) (step.FeatureActs.detach())
            expectClose 1e-5 "reconstruction" (inference.Forward x) (step.SaeOut.detach())

        testCase ("dead latents: counted after dead_feature_window steps without firing, and the AuxK loss turns on "
                  + "for topk") <| fun () ->
            let o = Opt.Make("topk", 256, 60, 128, k = 2.0, deadWindow = 5)
            use r = train o
            let withDead = r.Steps |> Seq.filter (fun s -> s.DeadFeatures > 0L) |> List.ofSeq
            Expect.isNonEmpty withDead "some of 256 latents at k = 2 go 5 steps without firing"
            Expect.isTrue
                (r.Steps |> Seq.take 5
                    |> Seq.forall (fun s -> s.DeadFeatures = 0L && s.Loss "auxiliary_reconstruction_loss" = 0.0))
                "nothing is dead within the first window"
            Expect.isTrue (withDead |> List.exists (fun s -> s.Loss "auxiliary_reconstruction_loss" > 0.0))
                "AuxK loss once latents are dead"
            Expect.equal r.DeadFeatures (r.Steps.[r.Steps.Count - 1].DeadFeatures)
                "the result's count is the last step's"

        testCase ("batchtopk: k·tokens latents per batch, a threshold learned as a moving average, saved as jumprelu "
                  + "with that threshold") <| fun () ->
            let o = Opt.Make("batchtopk", 64, 100, 256, k = 3.0)
            use r = train o
            let last = r.Steps.[r.Steps.Count - 1]
            Expect.floatClose Accuracy.high last.L0 3.0 "batch average L0 = k (every kept value positive)"
            let threshold = last.TopkThreshold.Value
            Expect.isGreaterThan threshold 0.0 "a positive threshold"
            Expect.equal r.Sae.Config.Architecture "jumprelu" "saved as jumprelu"
            use expected = torch.full([| 64L |], threshold.ToScalar(), dtype = torch.float32)
            Expect.equal (maxAbsDiff r.Sae.threshold expected) 0.0 "every latent's threshold is the learned one"

        testCase ("a saved SAE (cfg.json + sae_weights.safetensors + sparsity.safetensors) loads back to identical "
                  + "outputs, with SAELens 6's cfg fields") <| fun () ->
            for arch in [ "standard"; "topk"; "batchtopk" ] do
                let dir = tempFolder ()
                try
                    use r = train (options arch 32 20 128)
                    SaeCheckpoint.Save(r.Sae, dir, metadata "blocks.0.hook_resid_post", r.LogFeatureSparsity)
                    use loaded = SparseAutoencoder.Load dir
                    weightsEqual r.Sae loaded
                    use x = (synthetic 16 32 9UL).NextBatch 100
                    Expect.equal (maxAbsDiff (r.Sae.Encode x) (loaded.Encode x)) 0.0
                        (arch + ": features equal to the bit")
                    Expect.equal (maxAbsDiff (r.Sae.Forward x) (loaded.Forward x)) 0.0
                        (arch + ": outputs equal to the bit")
                    let json = File.ReadAllText(Path.Combine(dir, "cfg.json"))
                    let keys = firstKeys json
                    let common =
                        [ "d_in"; "d_sae"; "dtype"; "device"; "apply_b_dec_to_input"; "normalize_activations";
                          "reshape_activations"; "metadata" ]
                    Expect.equal keys
                        (common @ (if arch = "topk" then [ "k"; "rescale_acts_by_decoder_norm" ] else [])
                            @ [ "architecture" ]) (arch + ": SAELens 6's key order")
                    use doc = JsonDocument.Parse json
                    let meta = doc.RootElement.GetProperty "metadata"
                    Expect.equal (meta.GetProperty("sae_lens_version").GetString()) "6.18.0" "6.x layout"
                    Expect.equal (meta.GetProperty("hook_name").GetString()) "blocks.0.hook_resid_post"
                        "hook in metadata"
                    Expect.equal ([ for p in meta.EnumerateObject() -> p.Name ] |> List.take 14)
                        [ "sae_lens_version"; "sae_lens_training_version"; "model_name"; "hook_name"; "hook_head_index";
                          "context_size"; "prepend_bos"; "seqpos_slice";
                          "model_from_pretrained_kwargs"; "dataset_path"; "model_class_name"; "exclude_special_tokens";
                          "sequence_separator_token"; "disable_concat_sequences" ]
                        "metadata in a 6.18 training run's order"
                    use sparsity =
                        Lens.IO.SafetensorsFile.LoadAll(Path.Combine(dir, "sparsity.safetensors")).["sparsity"]
                    Expect.equal sparsity.shape [| 32L |] "log10 feature sparsity per latent"
                    Expect.isEmpty (Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories))
                        "no temporary files left"
                finally Directory.Delete(dir, true)

        testCase ("training is deterministic for a seed; checkpoints land where SAELens puts them (named by samples "
                  + "seen) and load") <| fun () ->
            let dir = tempFolder ()
            try
                let o = Opt.Make("topk", 32, 30, 64, nCheckpoints = 2, checkpointPath = dir)
                use a = train o
                use b = train (options "topk" 32 30 64)
                weightsEqual a.Sae b.Sae
                Expect.equal (SaeTrainer.CheckpointThresholds o |> List.ofSeq) [ 640L; 1280L ]
                    "range(0, T, ceil(T/(n+1)))[1:]"
                Expect.equal (a.Checkpoints |> Seq.map Path.GetFileName |> List.ofSeq) [ "704"; "1344" ]
                    "written once the samples seen exceed each threshold"
                for c in a.Checkpoints do
                    use s = SparseAutoencoder.Load c
                    Expect.equal s.Config.Architecture "topk" "a loadable SAELens folder"
            finally Directory.Delete(dir, true)

        testCase "bad options are refused naming SAELens's field" <| fun () ->
            let refused (o: SaeTrainingOptions) (fragment: string) =
                let e = throwsSae (fun () -> o.Validate 16)
                Expect.stringContains e.Message fragment "names the field"
            refused (Opt.Make("gated", 32, 10, 64)) "architecture 'gated'"
            refused (Opt.Make("topk", 32, 10, 64, k = 2.5)) "k 2.5"
            refused (Opt.Make("topk", 32, 10, 64, trainingTokens = 650L))
                "training_tokens 650 is not a multiple of train_batch_size_tokens 64"
            refused (Opt.Make("topk", 32, 10, 64, scheduler = "cosineannealingwarmrestarts")) "lr_scheduler_name"
            refused (Opt.Make("topk", 32, 10, 64, warm = 8, decay = 8)) "exceed the run's 10 steps"
            refused (Opt.Make("topk", 32, 10, 64, nCheckpoints = 1)) "checkpoint_path"
            refused (Opt.Make("topk", 32, 10, 64, lr = 0.0)) "lr must be positive"

        testCase ("activations streamed from a model's hook: every position but the excluded tokens', heads flattened "
                  + "for hook_z") <| fun () ->
            use model = ModelLoader.Load "demo-attn-only-2l"
            use g = new torch.Generator(1UL)
            let a =
                ModelActivations(model, "blocks.0.hook_resid_post", SaeInputs.RepeatedRandom(model, 10), 4, g,
                                 [ 50256L ])
            Expect.equal a.DIn 64 "d_model"
            use rows = a.Next()
            Expect.equal rows.shape [| 80L; 64L |] "4 rows × (BOS + 10 × 2 tokens), BOS left out"
            let z = ModelActivations(model, "blocks.0.attn.hook_z", SaeInputs.RepeatedRandom(model, 10), 2, g)
            Expect.equal z.DIn 64 "4 heads × d_head 16, flattened"
            let e =
                throwsSae (fun () ->
                    ModelActivations(model, "blocks.0.hook_resid_pots", SaeInputs.RepeatedRandom(model, 10), 2, g)
                        |> ignore)
            Expect.stringContains e.Message "did you mean blocks.0.hook_resid_post" "suggests the nearest hook"

        testCase "the mixing buffer shuffles once it holds buffer_size rows, serves half of them, keeps the rest"
        <| fun () ->
            let mutable calls = 0
            let next () =
                calls <- calls + 1
                torch.arange(int64 ((calls - 1) * 10), int64 (calls * 10), dtype = torch.float32).unsqueeze(1)
            use buffer = new MixingBuffer(Func<torch.Tensor>(next), 1, 40, 0L)
            use b1 = buffer.NextBatch 10
            Expect.equal calls 4 "filled to 40 rows before serving"
            use b2 = buffer.NextBatch 10
            Expect.equal calls 4 "40 / (2·10) = 2 batches served from one fill"
            use b3 = buffer.NextBatch 10
            Expect.equal calls 6 "the kept 20 rows plus 20 new ones make the next fill"
            let values = [ for b in [ b1; b2 ] do yield! b.data<float32>().ToArray() ]
            Expect.equal (values |> List.distinct |> List.length) 20 "no row served twice"
            Expect.notEqual values [ 0.0f .. 19.0f ] "shuffled"

        testCase ("F#: Sae.train streams a model's activations through the trainer and Sae.save writes a folder "
                  + "Sae.load reads back") <| fun () ->
            let dir = tempFolder ()
            try
                use model = ModelLoader.Load "demo-attn-only-2l"
                let request =
                    SaeTrainingRequest("blocks.0.attn.hook_z", Opt.Make("standard", 64, 3, 512, l1 = 0.1),
                                       SaeTrainingInputs.Repeated(10), [ 50256L ])
                use r = model |> Lens.FSharp.Sae.train request
                Expect.equal r.Steps.Count 3 "three steps"
                r.Sae |> Lens.FSharp.Sae.save dir (request.Metadata model)
                use loaded = Lens.FSharp.Sae.load dir
                weightsEqual r.Sae loaded
                Expect.equal loaded.HookName "blocks.0.attn.hook_z" "hook_z, trained on the heads flattened"
            finally Directory.Delete(dir, true)

        testCase "lens sae train: trains on a model's hook, writes a folder Lens loads; bad input gets located errors"
        <| fun () ->
            let dir = tempFolder ()
            try
                let out = Path.Combine(dir, "sae")
                let r = lens [ "sae"; "train"; "demo-attn-only-2l"; "--hook"; "blocks.0.hook_resid_post";
                               "--repeat-random"; "20"; "--exclude-bos"
                               "--architecture"; "topk"; "--k"; "4"; "--d-sae"; "64"; "--training-tokens"; "4096";
                               "--train-batch-size-tokens"; "1024"
                               "--log-every"; "2"; "--threads"; "1"; "--out"; out ]
                Expect.equal r.ExitCode 0 (sprintf "trains: %s %s" r.Stdout r.Stderr)
                Expect.stringContains r.Stdout "step      4" "logs the steps"
                use sae = SparseAutoencoder.Load out
                Expect.equal sae.HookName "blocks.0.hook_resid_post" "hook recorded"
                use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "cfg.json")))
                let meta = doc.RootElement.GetProperty "metadata"
                Expect.equal (meta.GetProperty("model_name").GetString()) "demo-attn-only-2l" "model recorded"
                Expect.equal (meta.GetProperty("context_size").GetInt32()) 41 "BOS + 20 × 2"
                Expect.equal [ for t in meta.GetProperty("exclude_special_tokens").EnumerateArray() -> t.GetInt64() ]
                    [ 50256L ] "BOS excluded"
                let bad =
                    lens [ "sae"; "train"; "demo-attn-only-2l"; "--hook"; "blocks.0.hook_resid_pots"; "--repeat-random";
                           "20"; "--d-sae"; "64"; "--out"; out ]
                Expect.equal bad.ExitCode 1 "an unknown hook fails"
                Expect.stringContains bad.Stderr ("'blocks.0.hook_resid_pots' is not a hook point of demo-attn-only-2l "
                                                  + "(did you mean blocks.0.hook_resid_post") "named, with the nearest"
                Expect.isFalse (bad.Stderr.Contains "   at ") "no stack trace"
                let none =
                    lens [ "sae"; "train"; "demo-attn-only-2l"; "--hook"; "blocks.0.hook_resid_post"; "--d-sae"; "64";
                           "--out"; out ]
                Expect.equal none.ExitCode 2 "no inputs is a usage error"
                Expect.stringContains none.Stderr ("give exactly one of --inputs FILE, --repeat-random N or --dataset "
                                                   + "DIR") "says what to give"
                let uneven =
                    lens [ "sae"; "train"; "demo-attn-only-2l"; "--hook"; "blocks.0.hook_resid_post"; "--repeat-random";
                           "20"; "--d-sae"; "64"; "--training-tokens"; "1000"; "--out"; out ]
                Expect.equal uneven.ExitCode 1 "refused"
                Expect.stringContains uneven.Stderr ("training_tokens 1000 is not a multiple of "
                                                     + "train_batch_size_tokens 4096") "names the fields"
            finally Directory.Delete(dir, true)
    ]
