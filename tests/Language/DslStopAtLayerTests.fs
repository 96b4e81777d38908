/// `cache save ... stop_at_layer K` in the DSL against TransformerLens's stop_at_layer numbers (tl-oracle stopstart).
module Lens.Tests.DslStopAtLayerTests

open System.IO
open Expecto
open Lens
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.ForwardOptionsTests

[<Tests>]
let tests =
    testList "dsl stop_at_layer" [
        testCase ("cache save stop_at_layer 1 saves the hooks TransformerLens fires, with its values; an out-of-range "
                  + "layer is refused at check") <| fun () ->
            let o = Oracle "stopstart"
            let expected = o.Expected "expected.safetensors"
            use model = o.Model()
            let dir = Lens.Tests.CoreTests.tempDir ()
            model.Save dir
            let tokens = expected.["tokens"]
            let rows =
                [ for r in 0L .. tokens.shape.[0] - 1L ->
                    "[" + (tokens.[r].data<int64>().ToArray() |> Array.map string |> String.concat ", ") + "]" ]
                        |> String.concat ", "
            let out = Path.Combine(Lens.Tests.CoreTests.tempDir (), "stopped.safetensors")
            let text = sprintf "model %s\ninput tokens [%s]\ncache save \"%s\" stop_at_layer 1\n" dir rows out
            let state = Lens.Tests.DslRuntimeTests.run text
            let statement = (Lens.Tests.DslRuntimeTests.result "cache" state).Statement
            Expect.stringContains (Lens.Dsl.AstJson.Serialize statement) "\"stopAtLayer\":1"
                "recorded in the run's AST JSON"
            let fired =
                [ for x in o.Manifest.GetProperty("hooks_fired").GetProperty("stop_at_layer=1").EnumerateArray() ->
                    x.GetString() ]
            use written = IO.SafetensorsFile.Open out
            Expect.sequenceEqual (written.Names |> Seq.sort) (fired |> Seq.sort)
                "the hooks that fire when stopping at layer 1"
            for n in fired do
                use t = written.Load n
                expectRel "stopstart" ("dsl " + n) t expected.[n]
            let errors =
                Lens.Tests.DslRuntimeTests.errorText
                    (sprintf "model %s\ninput tokens [%s]\ncache save \"%s\" stop_at_layer 3\n" dir rows out)
            Expect.stringContains errors "test.lens:3:" "located"
            Expect.stringContains errors "stop_at_layer 3 is out of range" "names the option and the value"
            for t in expected.Values do t.Dispose()
    ]
