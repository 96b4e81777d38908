// Trains the embedded demo model `demo-attn-only-2l` and writes it into this folder:
//     dotnet build -c Release && dotnet fsi models/demo-attn-only-2l/train.fsx
// See README.md beside this file for the curriculum, the recipe and the measured properties.
#I "../../src/Scripts/bin/Release/net10.0"
#r "TorchSharp.dll"
#r "Lens.Core.dll"
open System
open TorchSharp
open Lens
open Lens.Analysis
Lens.Native.TorchNative.EnsureLoaded()
let args = fsi.CommandLineArgs |> Array.skip 1 |> Array.map (fun a -> let i = a.IndexOf '=' in a.[..i-1], a.[i+1..]) |> Map.ofArray
let get k d = defaultArg (Map.tryFind k args) d
let low, high = 1000L, 1000L + int64 (get "ids" "1000")
let dModel = int (get "d" "64")
let pos = get "pos" "rotary"
torch.manual_seed(0L) |> ignore
torch.set_num_threads 1
let cfg = HookedTransformerConfig(NLayers = 2, DModel = dModel, NHeads = 4, DHead = 16, NCtx = 128, DVocab = 50257, AttnOnly = true,
                                  NormalizationType = "LN", PositionalEmbeddingType = pos, TokenizerName = "gpt2", Seed = Nullable 0,
                                  ModelName = "demo-attn-only-2l")
let subset = torch.arange(low, high)
let model =
    let m = new HookedTransformer(cfg)
    // W_U starts as W_Eᵀ on the curriculum ids, so copying a token is easy to express from the start.
    (use _ = torch.no_grad() in m.unembed.W_U.index_copy_(1L, subset, m.embed.W_E.index_select(0L, subset).t()) |> ignore)
    m
model.RequiresGrad(true) |> ignore
let draw (batch: int) (g: torch.Generator) =
    let n = int (torch.randint(5L, 60L, [| 1L |], generator = g).item<int64>())
    let body = torch.randint(low, high, [| int64 batch; int64 n |], generator = g)
    let bos = torch.ones([| int64 batch; 1L |], dtype = torch.int64) * 50256L
    torch.cat([| bos; body; body |], 1L)
let loss (m: HookedTransformer) (tokens: torch.Tensor) =
    let mutable resid : torch.Tensor = null
    use _h = m.Hooks(struct ("blocks.1.hook_resid_post", HookFunction(fun x _ -> resid <- x.alias().DetachFromDisposeScope(); null)))
    m.Forward(tokens, ReturnType.None) |> ignore
    use scope = torch.NewDisposeScope()
    let normed = m.ln_final.forward(resid)
    let wu = m.unembed.W_U.index_select(1L, subset)
    let logits = normed.matmul(wu) + m.unembed.b_U.index_select(0L, subset)
    let targets = tokens.narrow(1L, 1L, tokens.shape.[1] - 1L) - low
    let lp = logits.narrow(1L, 0L, tokens.shape.[1] - 1L).log_softmax(-1)
    let l = -(lp.gather(-1L, targets.unsqueeze(-1L)).mean())
    resid.Dispose()
    l.MoveToOuterDisposeScope()
let sw = Diagnostics.Stopwatch.StartNew()
let eval (m: HookedTransformer) step =
    use rep = RepeatedTokens.GenerateInRange(low, high, 50, 2, 8, 7UL, Nullable 50256L)
    use ind = HeadScores.Induction(m, rep)
    use prev = HeadScores.PreviousToken(m, rep)
    use lpt = m.Loss(rep.Tokens, true)
    let first = lpt.narrow(1L, 0L, 50L).mean().item<float32>()
    let second = lpt.narrow(1L, 50L, 50L).mean().item<float32>()
    printfn "%5d %6.1fs ind %s prev %s loss1 %.3f loss2 %.3f" step sw.Elapsed.TotalSeconds
        (String.Join(" ", [ for h in 0 .. 3 -> sprintf "%.2f" ind.[1, h] ])) (String.Join(" ", [ for h in 0 .. 3 -> sprintf "%.2f" prev.[0, h] ])) first second
    Console.Out.Flush()
    let bestInd = [ for h in 0 .. 3 -> ind.[1, h] ] |> List.max
    let bestPrev = [ for h in 0 .. 3 -> prev.[0, h] ] |> List.max
    bestInd >= 0.85 && bestPrev >= 0.85 && float second <= 0.15 * float first
// Phase 1: 3000 steps from scratch (AdamW lr 1e-3, warm-up 100, batch seed 0): the induction phase change.
// Phase 2: 500 more steps with a fresh AdamW (lr 5e-4, batch seed 1) to sharpen the heads.
let phase steps lr seed =
    let opts = TrainingOptions(Steps = steps, BatchSize = 32, Lr = lr, WarmupSteps = 100, Progress = false,
                               EvalEvery = (if steps > 1000 then 200 else 100), Seed = seed, Loss = Func<_,_,_>(loss), StopWhen = Func<_,_,_>(eval))
    Training.Train(model, GeneratedBatches(Func<_,_,_>(draw)), opts)
let r1 = phase 3000 1e-3 0L
let r2 = phase 500 5e-4 1L
printfn "trained %d + %d steps in %.1fs" r1.Steps r2.Steps sw.Elapsed.TotalSeconds
model.RequiresGrad(false) |> ignore
// Saved as float16 tensors (the config stays float32: Lens converts while loading) so that the
// 50257-row W_E and W_U fit the 16 MB budget; the config records the curriculum's id range.
let out = get "out" (IO.Path.Combine(__SOURCE_DIRECTORY__))
model.Config.RandomTokenRange <- [| low; high |]
model.Save out
let half = model.StateDict() |> Seq.map (fun kv -> Collections.Generic.KeyValuePair(kv.Key, kv.Value.to_type(torch.float16))) |> Seq.toArray
Lens.IO.SafetensorsFile.Save(IO.Path.Combine(out, "model.safetensors"), half, readOnlyDict [ "format", "pt"; "producer", "Lens models/demo-attn-only-2l/train.fsx" ])
printfn "saved to %s" out
