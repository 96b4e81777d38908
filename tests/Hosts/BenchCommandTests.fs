/// `lens bench` as a process: a CI-sized run on the demo model writes the JSON the issue specifies
/// (a `rows` array; name, median, min, max, unit on every row; baseline, ratio and target on paired rows).
module Lens.Tests.BenchCommandTests

open System
open System.IO
open System.Text.Json
open Expecto
open Lens.Tests.TestSupport
open Lens.Tests.Processes

[<Tests>]
let tests =
    testList "lens bench" [
        testCase ("--quick --json on the demo model: every row has its figures, paired rows their baseline, ratio and "
                  + "target") <| fun () ->
            let out = Path.Combine(Path.GetTempPath(), $"lens-bench-{Environment.ProcessId}.json")
            try
                let r =
                    lens [ "bench"; "--model"; "demo-attn-only-2l"; "--quick"; "--only"; "forward"; "hooks"; "cache";
                           "throughput"; "startup"; "--shape"; "1x16"; "--json"; out ]
                Expect.equal r.ExitCode 0 $"lens bench succeeds:\n{r.Stdout}\n{r.Stderr}"
                Expect.stringContains r.Stdout "median" "a table on the terminal"
                use doc = JsonDocument.Parse(File.ReadAllText out)
                let root = doc.RootElement
                Expect.equal (root.GetProperty("model").GetString()) "demo-attn-only-2l" "the model measured"
                Expect.equal (root.GetProperty("machine").GetProperty("nproc").GetInt32()) Environment.ProcessorCount
                    "the machine it ran on"
                let rows = [ for row in root.GetProperty("rows").EnumerateArray() -> row ]
                let names = rows |> List.map (fun row -> row.GetProperty("name").GetString())
                for row in rows do
                    let name = row.GetProperty("name").GetString()
                    for field in [ "median"; "min"; "max" ] do
                        Expect.equal (row.GetProperty(field).ValueKind) JsonValueKind.Number
                            $"{name}: {field} is a number"
                    Expect.isFalse (String.IsNullOrEmpty(row.GetProperty("unit").GetString())) $"{name}: has a unit"
                    Expect.isLessThanOrEqual (row.GetProperty("min").GetDouble()) (row.GetProperty("max").GetDouble())
                        $"{name}: min <= max"
                    if row.GetProperty("ratio").ValueKind = JsonValueKind.Number then
                        Expect.equal (row.GetProperty("baseline").ValueKind) JsonValueKind.Number
                            $"{name}: a ratio has its baseline"
                let paired = rows |> List.filter (fun row -> row.GetProperty("ratio").ValueKind = JsonValueKind.Number)
                Expect.isGreaterThanOrEqual paired.Length 4
                    "hooks, cache (time, memory, one hook per layer) and throughput rows are paired"
                for row in paired do
                    Expect.equal (row.GetProperty("target").ValueKind) JsonValueKind.String
                        $"""{row.GetProperty("name").GetString()}: a target"""
                let startup = names |> List.find (fun n -> n.Contains "lens run")
                Expect.stringContains startup "demo-attn-only-2l" "the start-up row times lens run on the demo model"
                Expect.exists names (fun n -> n.Contains "GFLOP/s") "the throughput row against the matmul ceiling"
            finally
                if File.Exists out then File.Delete out
    ]
