module Lens.Tests.ScriptTests

open System.IO
open Expecto
open Lens.Tests.TestSupport
open Lens.Tests.Processes

[<Tests>]
let tests =
    testList "entry points" [
        testCase "dotnet fsi loads Lens.fsx, TorchSharp initialises, a model runs" <| fun () ->
            let r = fsi (Path.Combine(repoRoot, "tests", "scripts", "smoke.fsx"))
            Expect.equal r.ExitCode 0 (sprintf "fsi failed:\n%s\n%s" r.Stdout r.Stderr)
            Expect.stringContains r.Stdout "matmul: 83" "a matmul through libtorch"
            Expect.stringContains r.Stdout "pattern: [|1L; 4L; 3L; 3L|]" "a cached pattern"

        testCase "the lens command initialises TorchSharp and reports usage errors with exit code 2" <| fun () ->
            let r = lens [ "cache" ]
            Expect.equal r.ExitCode 2 "usage error"
            Expect.stringContains r.Stderr "--out" "names the missing option"
    ]
