#r "nuget: Lens.FSharp"
#r "nuget: TorchSharp-cpu"
// The packages route: Lens.FSharp from a feed (see README, "Using it from C# and F#"), with the CPU backend.
// The demo model's induction heads on repeated random tokens (n = 50, batch 8, seed 0).
open Lens
open Lens.FSharp

let model = Model.load "demo-attn-only-2l"
let rep = model |> Repeated.tokens 50 8 0UL
let scores = model |> Scores.induction rep
for s in Scores.top 4 scores do
    printfn "induction L%dH%d %.6f" s.Layer s.Head s.Score
