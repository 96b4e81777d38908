/// `lens run`, `lens check`, `lens repl` and the examples, as processes: exit codes, terminal output, the JSON
/// record (validated against docs/run-result.schema.json), determinism, and the HTML report in Chromium.
module Lens.Tests.CliRunTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Expecto
open Lens.Tests.TestSupport
open Lens.Tests.Processes

// ---------------------------------------------------------------------------------------------
// A validator for the subset of JSON Schema (2020-12) that docs/run-result.schema.json uses. Any other
// keyword is an error, so the schema cannot silently rely on something this does not check.

module Schema =
    let private annotations = set [ "$schema"; "$id"; "title"; "description"; "$defs" ]
    let private known =
        set [ "$ref"; "type"; "enum"; "const"; "properties"; "required"; "additionalProperties"; "items"; "minimum";
              "oneOf" ]

    let private typeMatches (value: JsonElement) (name: string) =
        match name, value.ValueKind with
        | "object", JsonValueKind.Object
        | "array", JsonValueKind.Array
        | "string", JsonValueKind.String
        | "number", JsonValueKind.Number
        | "null", JsonValueKind.Null -> true
        | "boolean", (JsonValueKind.True | JsonValueKind.False) -> true
        | "integer", JsonValueKind.Number -> (let ok, _ = value.TryGetInt64() in ok)
        | _ -> false

    /// The problems of `value` against `schema` (empty: valid), each with its JSON path.
    let rec check (root: JsonElement) (schema: JsonElement) (value: JsonElement) (path: string) : string list =
        [ for p in schema.EnumerateObject() do
            if not (annotations.Contains p.Name || known.Contains p.Name) then
                failwithf "unsupported schema keyword '%s' at %s" p.Name path
          let has (name: string) = let ok, v = schema.TryGetProperty name in if ok then Some v else None
          match has "$ref" with
          | Some r ->
              let name = r.GetString().Replace("#/$defs/", "")
              yield! check root (root.GetProperty("$defs").GetProperty name) value path
          | None -> ()
          match has "type" with
          | Some t ->
              let names =
                  if t.ValueKind = JsonValueKind.Array then
                      [ for x in t.EnumerateArray() -> x.GetString() ] else [ t.GetString() ]
              if not (names |> List.exists (typeMatches value)) then
                  yield sprintf "%s: expected %s, got %A" path (String.Join(" or ", names)) value.ValueKind
          | None -> ()
          match has "enum" with
          | Some e ->
              if not (e.EnumerateArray() |> Seq.exists (fun x -> JsonElement.DeepEquals(x, value))) then
                  yield sprintf "%s: %s is not one of %s" path (value.GetRawText()) (e.GetRawText())
          | None -> ()
          match has "const" with
          | Some c ->
              if not (JsonElement.DeepEquals(c, value)) then yield sprintf "%s: expected %s" path (c.GetRawText())
          | None -> ()
          match has "minimum" with
          | Some m ->
              if value.ValueKind = JsonValueKind.Number && value.GetDouble() < m.GetDouble() then
                  yield sprintf "%s: below %g" path (m.GetDouble())
          | None -> ()
          if value.ValueKind = JsonValueKind.Object then
              let props = has "properties"
              match has "required" with
              | Some req ->
                  for r in req.EnumerateArray() do
                      let ok, _ = value.TryGetProperty(r.GetString())
                      if not ok then yield sprintf "%s: missing '%s'" path (r.GetString())
              | None -> ()
              for p in value.EnumerateObject() do
                  let declared =
                      props
                          |> Option.bind (fun ps -> let ok, s = ps.TryGetProperty p.Name in if ok then Some s else None)
                  match declared, has "additionalProperties" with
                  | Some s, _ -> yield! check root s p.Value (path + "." + p.Name)
                  | None, Some a when a.ValueKind = JsonValueKind.False ->
                      yield sprintf "%s: unexpected property '%s'" path p.Name
                  | None, Some a when a.ValueKind = JsonValueKind.Object ->
                      yield! check root a p.Value (path + "." + p.Name)
                  | _ -> ()
          if value.ValueKind = JsonValueKind.Array then
              match has "items" with
              | Some items ->
                  yield! value.EnumerateArray() |> Seq.mapi (fun i v -> check root items v (sprintf "%s[%d]" path i))
                      |> Seq.concat
              | None -> ()
          match has "oneOf" with
          | Some options ->
              let passing =
                  [ for o in options.EnumerateArray() -> check root o value path ] |> List.filter List.isEmpty
                      |> List.length
              if passing <> 1 then yield sprintf "%s: matches %d of the oneOf alternatives, not exactly 1" path passing
          | None -> () ]

    let load () =
        JsonDocument.Parse(File.ReadAllText(Path.Combine(repoRoot, "docs", "run-result.schema.json"))).RootElement

    let validate (json: string) =
        let schema = load ()
        use doc = JsonDocument.Parse json
        check schema schema doc.RootElement "$"

// ---------------------------------------------------------------------------------------------

let tinyDir = fixture [ "dsl-runtime"; "tiny-mlp" ]

let scratch = scratchFolder "lens-cli-run"

/// Writes an experiment to the scratch folder and returns its path.
let experiment (name: string) (text: string) =
    let path = Path.Combine(scratch.Force(), name)
    File.WriteAllText(path, text)
    path

let example (name: string) = Path.Combine(repoRoot, "examples", name)

let ok (r: ProcessResult) what =
    Expect.equal r.ExitCode 0 (sprintf "%s: exit code\nstdout:\n%s\nstderr:\n%s" what r.Stdout r.Stderr)
    r

let noStackTrace (r: ProcessResult) =
    Expect.isFalse (r.Stderr.Contains "   at " || r.Stdout.Contains "   at ") (sprintf "no stack trace:\n%s" r.Stderr)

/// `lens repl` with the given standard input.
let repl (args: string list) (input: string) =
    let psi =
        ProcessStartInfo("dotnet", RedirectStandardInput = true, RedirectStandardOutput = true,
                         RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = repoRoot)
    for a in lensDll :: "repl" :: args do psi.ArgumentList.Add a
    use p = Process.Start psi
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    p.StandardInput.Write input
    p.StandardInput.Close()
    if not (p.WaitForExit 300000) then p.Kill true; failwith "lens repl timed out"
    { ExitCode = p.ExitCode; Stdout = out.Result; Stderr = err.Result }

let resultsOf (json: string) =
    use doc = JsonDocument.Parse json
    [ for r in doc.RootElement.GetProperty("results").EnumerateArray() -> r.Clone() ]

let valuesOf (r: JsonElement) =
    [| for row in r.GetProperty("values").EnumerateArray() -> [| for v in row.EnumerateArray() -> v.GetDouble() |] |]

let withoutCreated (json: string) =
    json.Split('\n') |> Array.filter (fun l -> not (l.TrimStart().StartsWith "\"created\"")) |> String.concat "\n"

/// Runs an experiment with --json and returns (process result, JSON text).
let runJson (file: string) (extra: string list) =
    let out =
        Path.Combine(scratch.Force(), Path.GetFileNameWithoutExtension file + sprintf "-%d.json" (Random.Shared.Next()))
    let r = ok (lens ([ "run"; file; "--json"; out ] @ extra)) file
    r, File.ReadAllText out

// ---------------------------------------------------------------------------------------------

let schemaTests =
    testList "schema" [
        testCase "the validator rejects what the schema forbids" <| fun () ->
            let minimal kind extra =
                sprintf """{"lens_version":"x","created":"t","provenance":{"lens_commit":"unknown","torchsharp_version":"0","libtorch_version":"0","threads":1,"cpu":"c","os":"o","files":[]},"experiment":{"file":"f","text":null},"model":null,"seed":0,"device":"cpu","inputs":[],"interventions":[],
                   "results":[{"statement":"s","line":1,"command":"c","kind":"%s","title":"","interventions":[],"summary":{}%s}]}""" kind extra
            Expect.isEmpty (Schema.validate (minimal "scalar" ",\"measure\":\"loss\",\"value\":1.5")) "a valid scalar"
            Expect.isNonEmpty (Schema.validate (minimal "scalar" ",\"measure\":\"loss\"")) "a scalar without its value"
            Expect.isNonEmpty (Schema.validate (minimal "scalar" ",\"measure\":\"loss\",\"value\":\"1.5\""))
                "a value that is not a number"
            Expect.isNonEmpty (Schema.validate (minimal "layer_head_table" ",\"measure\":\"x\",\"values\":[[1,2]]"))
                "a table without labels"
            Expect.isNonEmpty (Schema.validate (minimal "weird" "")) "an unknown kind"
            Expect.isNonEmpty
                (Schema.validate
                    ((minimal "scalar" ",\"measure\":\"loss\",\"value\":1").Replace("\"seed\":0", "\"seed\":-1")))
                "a negative seed"
            Expect.isNonEmpty
                (Schema.validate
                    ((minimal "scalar" ",\"measure\":\"loss\",\"value\":1").Replace("\"device\":\"cpu\",", "")))
                "a missing field"
            Expect.isNonEmpty
                (Schema.validate
                    ((minimal "scalar"
                        ",\"measure\":\"loss\",\"value\":1").Replace("\"seed\":0", "\"seed\":0,\"extra\":1")))
                "an undeclared field"

        testCase "every command's JSON validates, with tables shaped as the model" <| fun () ->
            let file =
                experiment "every-command.lens"
                    ("model " + tinyDir
                        + ("\nseed 4\ninput repeat random 6 x2 batch 2\nscore induction\nscore prev_token\n"
                           + "detect duplicate_token\nheads where induction > 0.01\n")
                     + ("loss\nablate L0H0 mean {\n  run\n  logits top 3\n}\nablate neurons mlp L1 N1,N2\npredict\n"
                        + "generate 3 greedy\ncircuit full_qk L1H1 top 2\ncompose q L0H* -> L1H*\n")
                     + ("attribute to 5 vs 6\nlogit_lens\npatch heads_by_pos from repeat random 6 x2 batch 2 metric "
                        + "prob 5\npatch blocks from repeat random 6 x2 batch 2\n")
                     + "show pattern L1H0\nshow scores\nshow tokens\ncache save "
                         + Path.Combine(scratch.Force(), "acts.safetensors") + " filter \"blocks.0.*\"\n"
                     + "cache load acts.safetensors\nprint blocks.0.mlp.hook_post\nprint prev_token\n")
            let r, json = runJson file [ "--html"; Path.Combine(scratch.Force(), "every-command.html") ]
            Expect.equal (Schema.validate json) [] "valid against docs/run-result.schema.json"
            let results = resultsOf json
            Expect.equal results.Length 22 "one entry per result-producing statement"
            let kinds =
                results |> List.map (fun r -> r.GetProperty("command").GetString(), r.GetProperty("kind").GetString())
            Expect.contains kinds ("patch", "tensor") "a tensor"
            Expect.contains kinds ("circuit", "circuit") "a circuit"
            Expect.contains kinds ("generate", "text") "generated text"
            for r in results |> List.filter (fun r -> r.GetProperty("kind").GetString() = "layer_head_table") do
                let values = valuesOf r
                Expect.equal (values.Length, values[0].Length) (2, 2) "values[layer][head]: 2 layers × 2 heads"
                let labels =
                    [| for row in r.GetProperty("labels").EnumerateArray() ->
                        [| for l in row.EnumerateArray() -> l.GetString() |] |]
                Expect.equal labels [| [| "L0H0"; "L0H1" |]; [| "L1H0"; "L1H1" |] |] "labels[layer][head]"
            use doc = JsonDocument.Parse json
            let root = doc.RootElement
            Expect.equal (root.GetProperty("model").GetProperty("name").GetString()) tinyDir "the model as named"
            Expect.equal (root.GetProperty("model").GetProperty("weights_sha256").GetString().Length) 64 "a sha256"
            Expect.equal (root.GetProperty("seed").GetInt64()) 4L "the seed"
            let input = root.GetProperty("inputs").[0]
            Expect.equal (input.GetProperty("ids").GetArrayLength()) 2 "input ids, one row per batch entry"
            Expect.equal (input.GetProperty("tokens").[0].GetArrayLength()) 12 "and their strings"
            let interventions = root.GetProperty("interventions")
            Expect.equal (interventions.GetArrayLength()) 2 "both interventions"
            Expect.equal
                (interventions.[1].GetProperty("targets").EnumerateArray() |> Seq.map (fun t -> t.GetString())
                    |> List.ofSeq) [ "L1N1"; "L1N2" ] "resolved targets"
            Expect.stringContains (interventions.[0].GetProperty("ast").GetRawText()) "\"mode\":\"mean\""
                "the AST of what was done"
            Expect.stringContains r.Stdout "── line 4: score induction" "the terminal shows each statement"
    ]

let runTests =
    testList "lens run" [
        testCase "two runs of the same file give the same JSON apart from the timestamp" <| fun () ->
            let file =
                experiment "determinism.lens"
                    ("model " + tinyDir
                     + ("\nseed 9\ninput repeat random 8 x2 batch 2\nscore induction\n"
                        + "ablate L0H1 resample {\n  loss\n}\ngenerate 4 temperature 0.9\n"
                        + "patch resid_pre from repeat random 8 x2 batch 2\n"))
            let _, first = runJson file []
            let _, second = runJson file []
            Expect.notEqual first "" "a record"
            Expect.equal (withoutCreated first) (withoutCreated second) "byte-identical apart from created"
            Expect.equal ((first.Split('\n') |> Array.filter (fun l -> l.Contains "\"created\"")).Length) 1
                "created appears once"

        testCase "a semantic mistake exits 1 with its location and no stack trace; nothing runs" <| fun () ->
            let file = experiment "mistake.lens" ("model " + tinyDir + "\ninput tokens [1, 2, 3]\nloss\nablate L7H0\n")
            let r = lens [ "run"; file ]
            Expect.equal r.ExitCode 1 "experiment error"
            Expect.stringContains r.Stderr (file + ":4:8: layer 7 is out of range: the model has 2 layers (L0..L1)")
                "located"
            Expect.stringContains r.Stderr "1 problem found; nothing was run." "says nothing ran"
            Expect.isFalse (r.Stdout.Contains "loss =") "the loss before it did not run"
            noStackTrace r

        testCase "a syntax error exits 1 with the parser's message" <| fun () ->
            let file = experiment "syntax.lens" "scroe induction\n"
            let r = lens [ "run"; file ]
            Expect.equal r.ExitCode 1 "experiment error"
            Expect.stringContains r.Stderr "unknown command 'scroe'; did you mean 'score'?" "the parser's message"
            noStackTrace r

        testCase "a failure while running exits 1 naming the statement" <| fun () ->
            let file =
                experiment "failing.lens"
                    ("model " + tinyDir
                        + "\ninput tokens [1, 2, 3, 4]\nscore prev_token\nshow pattern where prev_token > 5\n")
            let r = lens [ "run"; file ]
            Expect.equal r.ExitCode 1 "experiment error"
            Expect.stringContains r.Stderr ":4:1: the selection where prev_token > 5 picks no heads" "located"
            Expect.stringContains r.Stdout "── line 3: score prev_token" "what ran before is printed"
            noStackTrace r

        testCase "usage mistakes exit 2" <| fun () ->
            let file = experiment "usage.lens" "seed 1\n"
            Expect.equal (lens [ "run"; file; "--device"; "gpu" ]).ExitCode 2 "a bad --device"
            Expect.equal (lens [ "run"; file; "--frobnicate" ]).ExitCode 2 "an unknown option"
            Expect.equal (lens [ "run" ]).ExitCode 2 "no file"
            Expect.equal (lens [ "run"; Path.Combine(scratch.Force(), "absent.lens") ]).ExitCode 1
                "a missing file is the experiment's problem"

        testCase "--model replaces the experiment's model; a path in the experiment is relative to its folder"
        <| fun () ->
            let dir = Path.Combine(scratch.Force(), "nested")
            Directory.CreateDirectory dir |> ignore
            let relative = Path.GetRelativePath(dir, tinyDir)
            let file = Path.Combine(dir, "relative.lens")
            File.WriteAllText(file, "model " + relative + "\ninput tokens [1, 2, 3]\nloss\n")
            let r = ok (lensIn (scratch.Force()) [] [ "run"; file ]) "relative model path"
            Expect.stringContains r.Stdout "2 layers × 2 heads" "found next to the experiment"
            let bad = experiment "missing-model.lens" "model ./no-such-model\ninput tokens [1, 2, 3]\nloss\n"
            Expect.equal (lens [ "run"; bad ]).ExitCode 1 "a missing model folder is an error"
            let r = ok (lens [ "run"; bad; "--model"; tinyDir ]) "--model wins"
            Expect.stringContains r.Stdout "loss =" "ran on the command line's model"

        testCase "lens check reports problems without running; ok otherwise" <| fun () ->
            let good = experiment "good.lens" ("model " + tinyDir + "\ninput tokens [1, 2, 3]\nloss\n")
            let r = ok (lens [ "check"; good ]) "check"
            Expect.stringContains r.Stdout "ok (3 statements" "ok"
            let bad =
                experiment "bad.lens"
                    ("model " + tinyDir
                        + "\ninput tokens [1, 2, 3]\nheads L0H5\nprint hook_embd\nprint blocks.0.attn.hook_result\n")
            let r = lens [ "check"; bad ]
            Expect.equal r.ExitCode 1 "problems"
            Expect.stringContains r.Stderr (bad + ":3:7: head 5 is out of range") "first"
            Expect.stringContains r.Stderr (bad + ":4:7: unknown hook point 'hook_embd'; did you mean 'hook_embed'")
                "second, with a suggestion"
            Expect.stringContains r.Stderr (bad + (":5:7: hook point 'blocks.0.attn.hook_result' fires only with "
                                                   + "use_attn_result = true"))
                "third: a hook its config switches off, naming the flag"
            Expect.stringContains r.Stderr "3 problems found" "count"

        testCase "lens --help lists every command; each command's help has examples" <| fun () ->
            let r = lens [ "--help" ]
            for c in [ "run"; "check"; "repl"; "cache" ] do Expect.stringContains r.Stdout c (sprintf "lists %s" c)
            for c in [ "run"; "check"; "repl" ] do
                let h = ok (lens [ c; "--help" ]) (c + " --help")
                Expect.stringContains h.Stdout "Examples:" (sprintf "%s has examples" c)
                Expect.stringContains h.Stdout ("lens " + c) (sprintf "%s's examples call it" c)

        testCase "lens repl keeps the state between lines, reports mistakes and goes on" <| fun () ->
            let input =
                ("input repeat random 5 x2\nscore prev_token\nlet early = heads L0H*\nheads L9H0\nablate early {\n"
                 + "  loss\n}\nheads early\n:quit\n")
            let r = repl [ "--model"; tinyDir ] input
            Expect.equal r.ExitCode 1 "a piped session with a mistake exits 1"
            Expect.stringContains r.Stdout "prev_token scores" "a score"
            Expect.stringContains r.Stderr "<repl>:4:7: layer 9 is out of range" "the mistake, located"
            Expect.stringContains r.Stdout "loss = " "the block ran after the mistake"
            Expect.stringContains r.Stdout "L0H0, L0H1  (2 heads)" "a name bound earlier"
            let clean = repl [ "--model"; tinyDir ] "input tokens [1, 2, 3]\nloss\n"
            Expect.equal clean.ExitCode 0 "a clean session exits 0"
            noStackTrace r
    ]

/// The best value of a layer × head result and where it is.
let best (r: JsonElement) =
    let values = valuesOf r
    seq { for l in 0 .. values.Length - 1 do for h in 0 .. values[l].Length - 1 -> l, h, values[l][h] }
        |> Seq.maxBy (fun (_, _, v) -> v)

let summaryOf (r: JsonElement) (name: string) = r.GetProperty("summary").GetProperty(name).GetDouble()

let byStatement (results: JsonElement list) (statement: string) =
    results |> List.filter (fun r -> r.GetProperty("statement").GetString() = statement)

/// One run of induction.lens with its HTML report, shared by the numbers test and the browser test.
let private inductionRun =
    lazy (let html = Path.Combine(scratch.Force(), "induction.html")
          let r, json = runJson (example "induction.lens") [ "--html"; html ]
          html, r, json)

let exampleTests =
    testList "examples" [
        testCase "induction.lens: the demo model's induction and previous-token heads" <| fun () ->
            let html, r, json = inductionRun.Force()
            Expect.isTrue (File.Exists html) "writes the HTML report"
            Expect.stringContains r.Stdout "induction scores" "prints the induction table"
            Expect.stringContains r.Stdout "prev_token scores" "prints the previous-token table"
            Expect.stringContains r.Stdout "L0  " "tables have layer rows"
            Expect.equal (Schema.validate json) [] "valid JSON record"
            let results = resultsOf json
            let il, _, induction = best (byStatement results "score induction").Head
            let pl, _, previous = best (byStatement results "score prev_token").Head
            Expect.equal il 1 "the induction head is in layer 1"
            Expect.isGreaterThanOrEqual induction 0.8 "induction score"
            Expect.equal pl 0 "the previous-token head is in layer 0"
            Expect.isGreaterThanOrEqual previous 0.8 "previous-token score"
            let loss = (byStatement results "loss").Head
            Expect.isLessThan (summaryOf loss "repeat 2") (summaryOf loss "repeat 1" / 3.0)
                "the second copy is predicted"

        testCase "induction.lens: its HTML report in Chromium" <| fun () ->
            let html, _, _ = inductionRun.Force()
            use browser = Chromium.launch ()
            let page = browser.NewPage(1200, 900)
            page.Goto html
            Expect.isEmpty page.Problems "no console errors or exceptions"
            Expect.equal (page.EvalInt "document.querySelectorAll('.lens-ap .lens-ap-grid .lens-ap-cell').length") 4
                "one head cell per head of layer 1 (n_heads)"
            Expect.equal (page.EvalString "document.querySelector('.lens-ap').dataset.ready") "1"
                "the attention view initialised"
            Expect.isGreaterThanOrEqual (page.EvalInt "document.querySelectorAll('.lens-hm, table.lens-table').length")
                2 "heatmaps and tables"
            Expect.stringContains (page.EvalString "document.querySelector('pre').textContent") "score induction"
                "the experiment text"
            page.Screenshot(artifact "dsl-induction-report.png")

        testCase "induction.fsx through dotnet fsi gives the numbers of induction.lens" <| fun () ->
            let _, json = runJson (example "induction.lens") []
            let results = resultsOf json
            let _, _, induction = best (byStatement results "score induction").Head
            let r = fsi (example "induction.fsx")
            Expect.equal r.ExitCode 0 (sprintf "fsi failed:\n%s\n%s" r.Stdout r.Stderr)
            Expect.stringContains r.Stdout "induction scores" "prints the induction table"
            Expect.stringContains r.Stdout (sprintf "best induction head: L1H" ) "names the head"
            Expect.stringContains r.Stdout (sprintf "%.6f" induction) "the same best induction score as the .lens run"

        testCase "ablation-and-composition.lens: ablating the previous-token head breaks induction" <| fun () ->
            let _, json = runJson (example "ablation-and-composition.lens") []
            Expect.equal (Schema.validate json) [] "valid"
            let results = resultsOf json
            let losses = byStatement results "loss"
            let clean, ablatedPrev, ablatedInd, ablatedOthers = losses[0], losses[1], losses[2], losses[3]
            Expect.isGreaterThan (summaryOf ablatedPrev "repeat 2") (3.0 * summaryOf clean "repeat 2")
                "no previous-token head, no induction"
            Expect.isGreaterThan (summaryOf ablatedInd "repeat 2") (3.0 * summaryOf clean "repeat 2")
                "no induction head, no induction"
            Expect.isLessThan (summaryOf ablatedOthers "repeat 2") (summaryOf ablatedPrev "repeat 2")
                "the other layer-0 heads matter less"
            let _, _, before = best (byStatement results "score induction").[0]
            let _, _, after = best (byStatement results "score induction").[1]
            Expect.isLessThan after (before / 2.0) "the induction stripe fades"

        testCase "patching.lens: patching the clean run in restores the induction prediction" <| fun () ->
            let _, json = runJson (example "patching.lens") []
            Expect.equal (Schema.validate json) [] "valid"
            let heads = (resultsOf json |> List.filter (fun r -> r.GetProperty("command").GetString() = "patch")).Head
            Expect.isGreaterThan (summaryOf heads "clean") (summaryOf heads "corrupted")
                "the clean run prefers 1300 (induction)"
            let _, _, top = best heads
            Expect.isGreaterThan top (summaryOf heads "corrupted") "some head's output carries it"

        testCase "circuit.lens: the induction head's OV circuit copies" <| fun () ->
            let r, json = runJson (example "circuit.lens") []
            Expect.equal (Schema.validate json) [] "valid"
            let results = resultsOf json
            let _, ih, _ = best (byStatement results "score induction").Head
            let ov = (byStatement results "circuit ov L1H*").Head.GetProperty("heads").GetProperty("rows")
            Expect.isGreaterThan (ov.[ih].[1].GetDouble()) 0.5 "positive copying score of the induction head"
            Expect.stringContains r.Stdout "K-composition" "composition tables"
    ]

[<Tests>]
let tests = testList "cli run" [ schemaTests; runTests; exampleTests ]
