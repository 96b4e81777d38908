// Loaded by the test suite through `dotnet fsi`: proves TorchSharp and Lens load from F# interactive.
#load "../../src/Scripts/Lens.fsx"
open TorchSharp
open Lens
open Lens.FSharp

let t = torch.arange(6L, dtype = torch.float32).reshape(2L, 3L)
printfn "native: %s" Lens.Native.TorchNative.Status
printfn "matmul: %g" (t.matmul(t.t()).sum().item<float32>())
let cfg =
    HookedTransformerConfig(NLayers = 1, DModel = 16, NCtx = 8, DHead = 4, DVocab = 11, AttnOnly = true,
                            Seed = System.Nullable 1)
let model = new HookedTransformer(cfg)
let logits, cache = model |> Model.runWithCache (torch.tensor([| 1L; 2L; 3L |]))
printfn "logits: %A" logits.shape
printfn "pattern: %A" (cache |> Cache.get "pattern" 0).shape
