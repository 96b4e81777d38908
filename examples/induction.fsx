// The induction study of induction.lens, built in F# (dotnet fsi examples/induction.fsx, after ./test or a Release
// build).
#load "../src/Scripts/Lens.fsx"
open Lens.Dsl
open Lens.FSharp.Experiment

let study =
    seed 0L
    >> repeatRandom 50 2 8
    >> score ScoreKind.Induction
    >> score ScoreKind.PrevToken
    >> loss

let state = execute study          // prints each result as it comes

let best (table: float[,]) =
    seq { for l in 0 .. Array2D.length1 table - 1 do for h in 0 .. Array2D.length2 table - 1 -> (l, h, table.[l, h]) }
    |> Seq.maxBy (fun (_, _, s) -> s)

let scores = resultsOf "score" state
let il, ih, induction = best (layerHead scores.[0])
let pl, ph, previous = best (layerHead scores.[1])
printfn "best induction head: L%dH%d %.6f" il ih induction
printfn "best previous-token head: L%dH%d %.6f" pl ph previous
printfn "loss: %.6f" (scalar (resultsOf "loss" state).[0])
