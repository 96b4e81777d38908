// One-line exploration in F# interactive, after `dotnet build -c Release` (or `./test`):
//     dotnet fsi
//     > #load "src/Scripts/Lens.fsx";;
//     > let model = Model.load "demo-attn-only-2l";;
// It references the Release build (what ./test and ./lens build) and opens Lens.
#nowarn "3245"
#I __SOURCE_DIRECTORY__
#I "bin/Release/net10.0"
#r "TorchSharp.dll"
#r "Microsoft.ML.Tokenizers.dll"
#r "Lens.Core.dll"
#r "Lens.Dsl.dll"
#r "Lens.Visualization.dll"
#r "Lens.Hub.dll"
#r "Lens.Training.dll"
#r "Lens.Demo.dll"
#r "Lens.Models.dll"
#r "Lens.FSharp.dll"

open Lens
open Lens.FSharp
Startup.ensure ()
