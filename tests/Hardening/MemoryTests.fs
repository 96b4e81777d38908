/// Memory discipline: repeated forwards do not grow the process, and every tensor a forward or an
/// activation cache creates is freed when its owner is disposed.
module Lens.Tests.MemoryTests

open Expecto
open TorchSharp
open Lens
open Lens.Bench

let private smallModel () =
    let cfg =
        HookedTransformerConfig(
            ModelName = "memory-test", NLayers = 2, DModel = 64, NHeads = 4, DHead = 16, DMlp = 256,
            DVocab = 1000, NCtx = 64, ActFn = "gelu_new", NormalizationType = "LN", Seed = 3)
    new HookedTransformer(cfg)

let private tokens (model: HookedTransformer) = BenchModels.Tokens(model.Config, 2L, 32L)

// Sequenced: tensor counts and resident memory are process-wide, so no other test may run meanwhile.
[<Tests>]
let tests =
    testSequenced <| testList "memory" [
        testCase "1000 forwards of the same input keep resident memory flat (growth < 5% after warm-up)" <| fun () ->
            if not ProcessMemory.Available then failtest "needs /proc/self/status (Linux)"
            use model = smallModel ()
            use input = tokens model
            for _ in 1 .. 100 do
                use _ = model.Forward input
                ()
            ProcessMemory.Settle()
            let start = ProcessMemory.Resident()
            let mutable peakGrowth = 0.0
            for i in 1 .. 1000 do
                use _ = model.Forward input
                if i % 100 = 0 then
                    ProcessMemory.Settle()
                    peakGrowth <- max peakGrowth (float (ProcessMemory.Resident() - start) / float start)
            Expect.isLessThan peakGrowth 0.05
                (sprintf "resident memory grew by %.1f%% over 1000 forwards (from %.0f MB)" (peakGrowth * 100.0)
                    (ProcessMemory.Mb start))

        testCase "a forward leaves no live tensor behind once its logits are disposed" <| fun () ->
            use model = smallModel ()
            use input = tokens model
            (model.Forward input).Dispose()
            let before = torch.Tensor.TotalCount
            for _ in 1 .. 10 do
                use _ = model.Forward input
                ()
            Expect.equal torch.Tensor.TotalCount before "live tensors after 10 forwards"

        testCase "disposing a CachedRun frees the logits and every cached activation" <| fun () ->
            use model = smallModel ()
            use input = tokens model
            (model.RunWithCache input).Dispose()
            let before = torch.Tensor.TotalCount
            let run = model.RunWithCache input
            let cached = run.Cache.Count
            Expect.isGreaterThan cached 20 "the run caches the activations"
            Expect.isGreaterThanOrEqual (torch.Tensor.TotalCount - before) (int64 cached + 1L)
                "the cache and logits hold live tensors"
            let held = run.Cache.Values |> Seq.toList
            run.Dispose()
            Expect.equal torch.Tensor.TotalCount before "live tensors after disposing the run"
            Expect.isTrue (held |> List.forall (fun t -> t.IsInvalid)) "the cached tensors are disposed"

        testCase "disposing an ActivationCache returns its bytes to the process (RSS)" <| fun () ->
            if not ProcessMemory.Available then failtest "needs /proc/self/status (Linux)"
            use model = smallModel ()
            // A cache large enough (~70 MB) that the process's own allocation noise (~2 MB) is small beside 10 % of it.
            use input = BenchModels.Tokens(model.Config, 64L, 64L)
            (model.RunWithCache input).Dispose()
            ProcessMemory.Settle()
            let before = ProcessMemory.Resident()
            let run = model.RunWithCache input
            let bytes = run.Cache.Bytes
            ProcessMemory.Settle()
            let during = ProcessMemory.Resident()
            run.Dispose()
            ProcessMemory.Settle()
            let after = ProcessMemory.Resident()
            Expect.isGreaterThan (float (during - before)) (0.5 * float bytes) "the cache is resident while alive"
            Expect.isLessThan (float (after - before)) (0.1 * float bytes)
                (sprintf "after disposal %.1f MB of the cache's %.1f MB stay resident"
                    (ProcessMemory.Mb(after - before)) (ProcessMemory.Mb bytes))
    ]
