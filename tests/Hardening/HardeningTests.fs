/// Inputs an adversarial user would try (issue 13): each used to crash the process, lose an output or mislead;
/// each is now refused before any work with a message naming the input, or handled.
module Lens.Tests.HardeningTests

open System
open System.IO
open System.Text
open System.Text.Json.Nodes
open Expecto
open Lens
open Lens.Dsl
open Lens.Dsl.Runtime
open Lens.IO
open Lens.Hub
open Lens.Tests.TestSupport
open Lens.Tests.Processes
open Lens.Tests.HubTests

let tinyDir = fixture [ "dsl-runtime"; "tiny-mlp" ]

let scratch = scratchFolder "lens-hardening"

/// A fresh folder under the scratch folder.
let folder (name: string) = freshFolderIn scratch name

let parseError (text: string) =
    try
        Parser.Parse(text, "deep.lens") |> ignore
        failtest "expected a parse error"
    with :? DslParseException as e -> e

let checkErrors (text: string) =
    use env =
        new ExperimentEnvironment(FileName = "test.lens", SourceText = text, ModelOverride = tinyDir,
                                  ReadDirectory = scratch.Force())
    Pipeline.Parse(text, "test.lens").Check(ExperimentState.Start env) |> List.ofSeq

let noStackTrace (r: ProcessResult) =
    Expect.isFalse (r.Stderr.Contains "   at " || r.Stdout.Contains "   at " || r.Stderr.Contains "Unhandled exception")
        (sprintf "no stack trace:\n%s" r.Stderr)

let tinyConfig () = JsonNode.Parse(File.ReadAllText(Path.Combine(tinyDir, "config.json"))).AsObject()

let configWith (field: string) (value: JsonNode) =
    let cfg = tinyConfig ()
    cfg[field] <- value
    cfg.ToJsonString()

let configError (json: string) =
    messageOf<ArgumentException> (fun () -> HookedTransformerConfig.FromJson(json, "config.json") |> ignore)

/// A safetensors file from a header text and data bytes.
let safetensorsBytes (header: string) (data: byte[]) =
    let h = Encoding.UTF8.GetBytes header
    Array.concat [ BitConverter.GetBytes(uint64 h.Length); h; data ]

let leftovers (dir: string) =
    Directory.GetFiles dir |> Array.filter (fun f -> f.Contains ".tmp") |> Array.map Path.GetFileName

[<Tests>]
let limitTests =
    testList "hardening limits" [
        test "4,000 nested brackets are a located error stating the limit, not a stack overflow" {
            let e = parseError ("heads " + String('(', 4000) + "L1H0" + String(')', 4000))
            Expect.equal (e.Line, e.Column) (1, 6 + Limits.NestingDepth + 1) "at the first bracket past the limit"
            Expect.stringContains e.Problem "the limit is 32" "states the limit"
        }
        test "brackets up to the limit still parse" {
            let text = "heads " + String('(', Limits.NestingDepth) + "L1H0" + String(')', Limits.NestingDepth)
            match List.ofSeq (Parser.Parse(text, "ok.lens").Statements) with
            | [ :? HeadsStatement as h ] ->
                Expect.equal h.Selection (HeadSelector(Nullable 1, Nullable 0) :> Selection) "one selector"
            | other -> failtestf "expected one heads statement, got %A" other
        }
        test "a 20,000-term except chain is refused at parse time with the term limit" {
            let e = parseError ("heads L0H0" + String.replicate 20000 " except L0H1")
            Expect.equal (e.Line, e.Column) (1, 7) "at the selection"
            Expect.stringContains e.Problem "20001 terms; the limit is 1024" "states the count and the limit"
        }
        test "a selection of 1,024 terms is accepted" {
            Parser.Parse("heads L0H0" + String.replicate 1023 ", L0H1", "ok.lens") |> ignore
        }
        test "blocks nested past the limit are refused at the brace" {
            let text = String.replicate 40 "ablate L0H0 {\n" + "loss\n" + String.replicate 40 "}\n"
            let e = parseError text
            Expect.equal (e.Line, e.Column) (33, 13) "at the 33rd brace"
            Expect.stringContains e.Problem "blocks nested more than 32 deep" "names the limit"
        }
        test "an experiment over a mebibyte is refused stating the limit" {
            let e = parseError (String.replicate (Limits.SourceCharacters / 5 + 1) "loss\n")
            Expect.stringContains e.Problem (sprintf "the limit is %d" Limits.SourceCharacters) "states the limit"
        }
        test "an input file over its line limit is refused naming the file" {
            let dir = folder "lines"
            File.WriteAllLines(Path.Combine(dir, "many.txt"),
                               Array.init (Limits.InputRows + 1) (fun i -> sprintf "line %d" i))
            use env =
                new ExperimentEnvironment(FileName = "t.lens", SourceText = "input file many.txt\n",
                                          ModelOverride = tinyDir, ReadDirectory = dir)
            let errors =
                Pipeline.Parse("input file many.txt\n", "t.lens").Check(ExperimentState.Start env) |> List.ofSeq
                    |> List.map string
            match errors with
            | [ e ] ->
                Expect.stringContains e
                    (sprintf "has %d non-empty lines; the limit is %d" (Limits.InputRows + 1) Limits.InputRows)
                        "the limit"
            | other -> failtestf "expected one error, got %A" other
        }
    ]

[<Tests>]
let messageTests =
    testList "hardening messages" [
        test "one bad input gives one error, not a 'needs an input' after every later statement" {
            let errors =
                checkErrors ("input file absent.txt\nscore prev_token\nloss\nlogits top 3\nshow tokens\n"
                             + "ablate L0H0 mean\n")
            match errors with
            | [ e ] -> Expect.stringContains (string e) "absent.txt" "the one error names the file"
            | other -> failtestf "expected exactly one error, got:\n%s" (other |> List.map string |> String.concat "\n")
        }
        test "a later good input ends the quiet: statements after it are checked again" {
            let errors =
                checkErrors "input file absent.txt\nloss\ninput tokens [1, 2, 3]\ninput tokens [1, 2, 300]\n"
                    |> List.map string
            Expect.equal errors.Length 2
                (sprintf "the missing file and the id out of range:\n%s" (String.concat "\n" errors))
        }
        test "terminal escape sequences in an experiment are shown, not obeyed" {
            let e = parseError "loss \u001b[31mred\u001b]0;title\u0007"
            Expect.isFalse (e.Message.Contains '\u001b') "no ESC in the message"
            Expect.isFalse (e.Message.Contains '\u0007') "no BEL in the message"
            Expect.stringContains e.Message "\u241b[31mred" "ESC shown as its control picture"
            let lines = e.Message.Split '\n'
            Expect.equal (lines[2].IndexOf '^') (lines[1].IndexOf '\u241b') "the caret still points at the escape"
            let check = checkErrors "input file \u001b[2Jwiped.txt\n" |> List.map string |> String.concat "\n"
            Expect.isFalse (check.Contains '\u001b') "check errors too"
        }
    ]

[<Tests>]
let inputTests =
    testList "hardening inputs" [
        test "config.json values out of their domains are refused naming the field" {
            let cases =
                [ "n_heads", JsonValue.Create(-4) :> JsonNode, "config field n_heads is -4"
                  "rotary_dim", JsonValue.Create(64),
                      "config field rotary_dim is 64; it must be an even number between 2 and d_head (8)"
                  "n_ctx", JsonValue.Create(2000000000), "config field n_ctx is 2000000000"
                  "d_mlp", JsonValue.Create(0), "config field d_mlp is 0"
                  "eps", JsonValue.Create(-1.0), "config field eps is -1"
                  "n_layers", JsonValue.Create(5000), "config field n_layers is 5000; it must be between 1 and 4096" ]
            for field, value, expected in cases do
                let json =
                    if field = "rotary_dim" then
                        let cfg = tinyConfig ()
                        cfg["positional_embedding_type"] <- JsonValue.Create "rotary"
                        cfg["rotary_dim"] <- value
                        cfg.ToJsonString()
                    else configWith field value
                let message = configError json
                Expect.stringContains message "config.json: " (sprintf "%s: names the file" field)
                Expect.stringContains message expected (sprintf "%s: names the field and value" field)
            HookedTransformerConfig.FromJson((tinyConfig ()).ToJsonString(), "config.json") |> ignore
        }
        test "a model whose parameters exceed the machine's memory is refused before any allocation" {
            let cfg = tinyConfig ()
            cfg["d_vocab"] <- JsonValue.Create 16000000
            cfg["d_model"] <- JsonValue.Create 16000000
            cfg["d_head"] <- JsonValue.Create 8000000
            let message = configError (cfg.ToJsonString())
            Expect.stringContains message "the model's parameters need" "says what it needs"
        }
        test "a safetensors shape whose byte size overflows int64 is refused at the header check" {
            let dir = folder "overflow"
            let path = Path.Combine(dir, "crafted.safetensors")
            // 2^62 × 4 elements × 4 bytes = 2^66, which wraps to 0 and would match the empty data_offsets.
            File.WriteAllBytes(path,
                               safetensorsBytes ("""{"x":{"dtype":"F32","shape":[4611686018427387904,4],"""
                                                 + """"data_offsets":[0,0]}}""") [||])
            Expect.throwsT<SafetensorsException> (fun () -> SafetensorsFile.Open(path).Dispose()) "refused"
        }
        test "the overflow message names the tensor and says why" {
            let dir = folder "overflow2"
            let path = Path.Combine(dir, "crafted.safetensors")
            File.WriteAllBytes(path,
                               safetensorsBytes ("""{"x":{"dtype":"F32","shape":[4611686018427387904,4],"""
                                                 + """"data_offsets":[0,0]}}""") [||])
            try
                SafetensorsFile.Open(path).Dispose()
                failtest "expected a SafetensorsException"
            with :? SafetensorsException as e ->
                Expect.stringContains e.Message "tensor 'x'" "names the tensor"
                Expect.stringContains e.Message "overflows 64 bits" "says why"
        }
        test "safetensors header fields of the wrong JSON kind are refused, not a .NET error" {
            let dir = folder "kinds"
            for header in [ """{"x":{"dtype":"F32","shape":"big","data_offsets":[0,0]}}"""
                            """{"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"""
                            """{"x":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}"""
                            """{"__metadata__":[1,2]}""" ] do
                let path = Path.Combine(dir, "k.safetensors")
                File.WriteAllBytes(path, safetensorsBytes header (Array.zeroCreate 4))
                Expect.throwsT<SafetensorsException> (fun () -> SafetensorsFile.Open(path).Dispose()) header
        }
        test "--tokens that are not whole numbers name --tokens and the element" {
            for json, part in [ "[1.5]", "position 0 is 1.5"; "[[1,2],[3,\"x\"]]", "row 1, position 1 is \"x\"";
                                "[[1],2]", "element 1 is 2" ] do
                try
                    Lens.Cli.Commands.CacheCommand.ParseTokens(json).Dispose()
                    failtestf "%s: expected a usage error" json
                with :? Lens.Cli.UsageException as e ->
                    Expect.stringContains e.Message "--tokens" json
                    Expect.stringContains e.Message part json
        }
        test "lens cache with an id outside the vocabulary or a negative id is a usage error naming --tokens" {
            let dir = folder "cache-tokens"
            for tokens, part in [ "[1,50257]", "id 50257 (row 0, position 1) is out of range"; "[-3]", "id -3" ] do
                let r = lensIn dir [] [ "cache"; "demo-attn-only-2l"; "--tokens"; tokens; "--out"; "a.safetensors" ]
                Expect.equal r.ExitCode 2 (sprintf "%s: usage error\n%s" tokens r.Stderr)
                Expect.stringContains r.Stderr "--tokens" tokens
                Expect.stringContains r.Stderr part tokens
                noStackTrace r
            Expect.isEmpty (Directory.GetFiles dir) "nothing written"
        }
    ]

[<Tests>]
let outputTests =
    testList "hardening outputs" [
        test "an atomic write that fails leaves the old file and no temporary file" {
            let dir = folder "atomic"
            let target = Path.Combine(dir, "out.json")
            File.WriteAllText(target, "old")
            Expect.throwsT<InvalidOperationException>
                (fun () ->
                    AtomicFile.Write(target, fun s ->
                        s.Write([| 1uy; 2uy |])
                        raise (InvalidOperationException "disk full")))
                "the failure comes through"
            Expect.equal (File.ReadAllText target) "old" "the old content survives"
            Expect.isEmpty (leftovers dir) "no temporary file left"
            AtomicFile.WriteAllText(target, "new")
            Expect.equal (File.ReadAllText target) "new" "a good write replaces it"
            Expect.isEmpty (leftovers dir) "no temporary file left after success"
        }
        test "cache save to a folder fails before writing and leaves no DIR.tmp-PID behind" {
            let dir = folder "save-dir"
            let target = Directory.CreateDirectory(Path.Combine(dir, "acts.safetensors")).FullName
            use t = TorchSharp.torch.ones(2L)
            Expect.throwsT<IOException> (fun () ->
                SafetensorsFile.Save(target, [ Collections.Generic.KeyValuePair("x", t) ])) "refused"
            Expect.isEmpty (leftovers dir) "no temporary file"
        }
        test "output paths are checked: folder, file in the way, the experiment itself, the same file twice" {
            let dir = folder "paths"
            let afile = Path.Combine(dir, "afile")
            File.WriteAllText(afile, "x")
            Expect.stringContains (OutputPaths.FileProblem dir) "is a folder" "a folder"
            Expect.stringContains (OutputPaths.FileProblem(Path.Combine(afile, "x.json"))) "is a file, not a folder"
                "a file in the way"
            Expect.isNull (OutputPaths.FileProblem(Path.Combine(dir, "new", "deeper", "x.json")))
                "missing folders can be made"
            let input = Path.Combine(dir, "x.lens")
            File.WriteAllText(input, "loss\n")
            let message (work: unit -> unit) = messageOf<OutputPathException> work
            Expect.stringContains (message (fun () -> OutputPaths.Check([| struct ("--json", input) |],
                                                                        [ struct ("the experiment itself", input) ])))
                "is the experiment itself: an output may not overwrite an input" "the input"
            Expect.stringContains
                (message
                    (fun () ->
                        OutputPaths.Check([| struct ("--json", afile + "2"); struct ("--html", afile + "2") |], [])))
                "is also written by --json: two outputs may not be the same file" "twice"
        }
        test "lens run refuses bad --json/--html before running and keeps every file as it was" {
            let dir = folder "run-outputs"
            let lens = Path.Combine(dir, "x.lens")
            let text = sprintf "model %s\ninput tokens [1, 2, 3, 4]\nloss\n" tinyDir
            File.WriteAllText(lens, text)
            File.WriteAllText(Path.Combine(dir, "afile"), "keep")
            File.WriteAllText(Path.Combine(dir, "ok.json"), "previous")
            Directory.CreateDirectory(Path.Combine(dir, "SOMEDIR")) |> ignore
            let cases =
                [ [ "--json"; "SOMEDIR" ], "is a folder"
                  [ "--json"; "ok.json"; "--html"; "SOMEDIR" ], "--html: 'SOMEDIR' is a folder"
                  [ "--json"; "afile/x.json" ], "is a file, not a folder"
                  [ "--json"; "x.lens" ], "is the experiment itself"
                  [ "--json"; "same.out"; "--html"; "same.out" ], "two outputs may not be the same file" ]
            for args, part in cases do
                let r = lensIn dir [] ([ "run"; "x.lens" ] @ args)
                Expect.equal r.ExitCode 2 (sprintf "%A: usage error\n%s" args r.Stderr)
                Expect.stringContains r.Stderr part (sprintf "%A" args)
                Expect.isFalse (r.Stdout.Contains "loss") (sprintf "%A: nothing ran" args)
                noStackTrace r
            Expect.equal (File.ReadAllText lens) text "the experiment is unchanged"
            Expect.equal (File.ReadAllText(Path.Combine(dir, "ok.json"))) "previous" "the earlier output survives"
            Expect.equal (File.ReadAllText(Path.Combine(dir, "afile"))) "keep" "the file in the way survives"
            Expect.isEmpty (leftovers dir) "no temporary files"
        }
        test "a statement writing to a folder is a located check error" {
            let dir = folder "stmt-outputs"
            Directory.CreateDirectory(Path.Combine(dir, "figs")) |> ignore
            let text = sprintf "model %s\ninput tokens [1, 2, 3, 4]\nshow tokens > figs\ncache save figs\n" tinyDir
            use env =
                new ExperimentEnvironment(FileName = "t.lens", SourceText = text, WriteDirectory = dir,
                                          ReadDirectory = dir)
            let errors =
                Pipeline.Parse(text, "t.lens").Check(ExperimentState.Start env) |> List.ofSeq |> List.map string
            Expect.equal errors.Length 2 (String.concat "\n" errors)
            Expect.stringContains errors[0] "t.lens:3:" "show, at its line"
            Expect.stringContains errors[1] "t.lens:4:" "cache save, at its line"
            Expect.all errors (fun e -> e.Contains "'figs' is a folder, not a file") "names the path"
        }
        test "training refuses a checkpoint folder that is a file before the first step" {
            let dir = folder "ckpt"
            let file = Path.Combine(dir, "ckpt")
            File.WriteAllText(file, "x")
            use model = new HookedTransformer(HookedTransformerConfig.FromJson((tinyConfig ()).ToJsonString()))
            Expect.throwsT<OutputPathException> (fun () -> model.Save file) "a model save to a file"
            Expect.equal (File.ReadAllText file) "x" "the file survives"
        }
    ]

[<Tests>]
let replTests =
    testList "hardening repl" [
        test "REPL errors are reported at the line the user typed" {
            use env = new ExperimentEnvironment(FileName = "<repl>", SourceText = "", ModelOverride = tinyDir)
            let session = ExperimentSession(env)
            session.Submit("input tokens [1, 2, 3, 4]\n", 1) |> ignore
            let e = try session.Submit("los\n", 4) |> ignore; failtest "x" with :? DslParseException as e -> e
            Expect.equal (e.Line, e.Column) (4, 1) "line 4 of the session"
            let c =
                try session.Submit("heads L9H0\n", 7) |> ignore; failtest "x" with :? ExperimentCheckException as c -> c
            Expect.equal c.Errors[0].Line 7 "check errors too"
        }
        test "a stray '{' is reported at once instead of swallowing the session" {
            use env = new ExperimentEnvironment(FileName = "<repl>", SourceText = "", ModelOverride = tinyDir)
            let session = ExperimentSession(env)
            Expect.isFalse (session.NeedsMoreLines "{\n") "a stray brace"
            Expect.isFalse (session.NeedsMoreLines "loss {\n") "a brace after a command without a block"
            Expect.isTrue (session.NeedsMoreLines "ablate L0H0 {\n") "an open ablate block"
            Expect.isTrue (session.NeedsMoreLines "ablate L0H0 {\n  los\n")
                "a mistake inside the block waits for its end"
        }
        test "a piped session goes on after a stray '{' and numbers its lines as typed" {
            let input = sprintf "model %s\ninput tokens [1, 2, 3, 4]\n{\nlos\nloss\n" tinyDir
            let r = Lens.Tests.CliRunTests.repl [] input
            Expect.equal r.ExitCode 1 "failures make exit code 1"
            Expect.stringContains r.Stderr "<repl>:3:1: a block must follow a command" "the brace at line 3"
            Expect.stringContains r.Stderr "<repl>:4:1: unknown command 'los'" "the typo at line 4"
            Expect.stringContains r.Stdout "loss" "the last statement ran"
            noStackTrace r
        }
    ]

[<Tests>]
let hubTests =
    testList "hardening hub cache" [
        taskCase "a deleted blob behind a snapshot link is repaired online and reported offline" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use client = new HubClient(options cache hub)
            let files = [ "config.json"; "model.safetensors" ]
            let! folder = client.SnapshotDownloadAsync(repo, files)
            File.Delete(Path.Combine(repoDir cache, "blobs", weightsFile.Sha256))
            Expect.isNull (Lens.Hub.PretrainedDownloads.CachedSnapshot(repo, cache.Dir))
                "not loadable (what `lens models` says)"
            Expect.isNull (HubCache.TryGetCachedFile(repo, "model.safetensors", "main", cache.Dir))
                "the broken link is not a cached file"
            use offline =
                new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Offline = true, Progress = null))
            let! e = expectHubError HubErrorKind.Offline (fun () -> offline.SnapshotDownloadAsync(repo, files))
            expectContains e.Message "'model.safetensors'"
            let! again = client.SnapshotDownloadAsync(repo, files)
            Expect.equal again folder "same snapshot"
            Expect.equal (sha256Of (Path.Combine(folder, "model.safetensors"))) weightsFile.Sha256 "repaired"
            Expect.equal (hub.CdnGets "model.safetensors") 2 "downloaded again"
        }
        taskCase "a truncated cached blob is detected by its hash and reported" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use client = new HubClient(options cache hub)
            let! folder = client.SnapshotDownloadAsync(repo, [ "config.json"; "model.safetensors" ])
            Expect.isNull (CachedBlobs.FirstProblem folder) "a whole snapshot has no problem"
            let blob = Path.Combine(repoDir cache, "blobs", weightsFile.Sha256)
            File.WriteAllBytes(blob, weightsFile.Bytes[.. 999])
            let problem = CachedBlobs.FirstProblem folder
            Expect.stringContains problem "'model.safetensors' is damaged" "names the file"
            Expect.stringContains problem "1000 bytes" "says its size"
            let offline = HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Offline = true, Progress = null)
            let e =
                try
                    Lens.Hub.PretrainedDownloads.Fetch(repo, offline, verify = true) |> ignore
                    failtest "expected a HubException"
                with :? HubException as e -> e
            Expect.equal e.Kind HubErrorKind.Offline "offline"
            expectContains e.Message "'model.safetensors' is damaged"
        }
    ]

[<Tests>]
let memoryTests =
    testList "hardening memory" [
        test "lens check states the estimated peak memory and its statement" {
            let dir = folder "memory-ok"
            File.WriteAllText(Path.Combine(dir, "m.lens"),
                              sprintf "model %s\ninput repeat random 10 batch 4\nloss\nscore induction\n" tinyDir)
            let r = lensIn dir [] [ "check"; "m.lens" ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.stringContains r.Stdout "estimated peak memory: " "states the estimate"
            Expect.stringContains r.Stdout "(line 4: `score induction`)"
                "the statement that keeps every layer's activations"
        }
        test "an experiment above the memory budget is refused before running, naming the statement" {
            let dir = folder "memory-over"
            // Sampled generate draws every row from one random stream and does not run in chunks of rows.
            File.WriteAllText(Path.Combine(dir, "m.lens"),
                              sprintf "model %s\ninput repeat random 10 batch 4000\nloss\ngenerate 5 temperature 0.7\n"
                                  tinyDir)
            let r = lensIn dir [ MemoryEstimate.LimitVariable, "50M" ] [ "run"; "m.lens" ]
            Expect.equal r.ExitCode 1 r.Stderr
            Expect.stringContains r.Stderr ("m.lens:4:1: sampled generate cannot run in chunks of rows: every row "
                                            + "draws from one random stream in batch order")
                "at the statement, saying why"
            Expect.stringContains r.Stderr "on an input of [4000, 20] tokens it needs an estimated" "the input"
            Expect.stringContains r.Stderr "but this machine has 50.0 MiB available: give at most " "the budget"
            Expect.stringContains r.Stderr "or generate greedily (`generate N greedy` runs in chunks)" "what to do"
            Expect.stringContains r.Stderr "nothing was run" "before running"
            Expect.isFalse (r.Stdout.Contains "loss") "nothing ran"
        }
        test "an input above the budget for one batch runs in chunks of rows, and lens check says how many" {
            let dir = folder "memory-chunks"
            File.WriteAllText(Path.Combine(dir, "m.lens"),
                              sprintf "model %s\ninput repeat random 10 batch 4000\nloss\nscore induction\n" tinyDir)
            let check = lensIn dir [ MemoryEstimate.LimitVariable, "50M" ] [ "check"; "m.lens" ]
            Expect.equal check.ExitCode 0 check.Stderr
            Expect.stringContains check.Stdout "line 4: `score induction` runs in " "states the chunks of the statement"
            let r = lensIn dir [ MemoryEstimate.LimitVariable, "50M" ] [ "run"; "m.lens" ]
            Expect.equal r.ExitCode 0 r.Stderr
        }
        test ("cache save and print run in chunks of rows above the budget, show pattern runs row 0 alone, and lens "
              + "check says so") {
            let dir = folder "memory-outputs"
            File.WriteAllText(Path.Combine(dir, "m.lens"),
                              sprintf
                                  "model %s\ninput repeat random 10 batch 4000\n\
                                   cache save acts.safetensors filter \"blocks.0.hook_resid_post\"\n\
                                   print blocks.1.hook_mlp_out\nshow pattern L0H0\n" tinyDir)
            let check = lensIn dir [ MemoryEstimate.LimitVariable, "50M" ] [ "check"; "m.lens" ]
            Expect.equal check.ExitCode 0 check.Stderr
            Expect.stringContains check.Stdout ("line 3: `cache save acts.safetensors filter "
                                                + "\"blocks.0.hook_resid_post\"` runs in ") "the chunks of cache save"
            Expect.stringContains check.Stdout "line 4: `print blocks.1.hook_mlp_out` runs in " "the chunks of print"
            Expect.stringContains check.Stdout ("line 5: `show pattern L0H0` runs on row 0 only, the row it shows (the "
                                                + "whole input does not fit the memory budget)")
                "show pattern's one row"
            let r = lensIn dir [ MemoryEstimate.LimitVariable, "50M" ] [ "run"; "m.lens" ]
            Expect.equal r.ExitCode 0 r.Stderr
            Expect.stringContains r.Stdout ("(only row 0 of the 4000 rows was run: the whole input does not fit the "
                                            + "memory budget)") "show says so"
            use file = SafetensorsFile.Open(Path.Combine(dir, "acts.safetensors"))
            Expect.sequenceEqual file.Entries.["blocks.0.hook_resid_post"].Shape [| 4000L; 20L; 16L |]
                "every row's activations"
        }
    ]
