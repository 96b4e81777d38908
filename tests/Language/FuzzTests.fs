/// The fuzzing suite (issue 13): seeded random and mutated inputs of every kind a user hands Lens, under a time
/// budget. The property: each ends in a result or a refusal that names the input (a DslParseException, a located
/// check error, a SafetensorsException, a config error naming its field, a usage error naming --tokens) — never
/// another exception, a native crash (which would end this test process), a hang, or a changed input file. A
/// sample goes through the real `lens` process too: exit code 0, 1 or 2, no stack trace, inputs unchanged.
module Lens.Tests.FuzzTests

open System
open System.Diagnostics
open System.IO
open System.Security.Cryptography
open System.Text
open System.Text.Json.Nodes
open System.Threading.Tasks
open Expecto
open Lens
open Lens.Dsl
open Lens.Dsl.Runtime
open Lens.IO
open Lens.Tests.TestSupport
open Lens.Tests.Processes

/// Fixed, so a failure reproduces: the same seed gives the same cases in the same order.
let seed = 13013
/// The in-process cases stop after this long; the process sample runs after them.
let inProcessBudget = TimeSpan.FromSeconds 28.0
/// One case longer than this is a hang.
let caseLimit = TimeSpan.FromSeconds 20.0
let processSamples = 6

let tinyDir = fixture [ "dsl-runtime"; "tiny-mlp" ]

let scratch = scratchFolder "lens-fuzz"

/// The seed texts: every example and golden experiment.
let corpus =
    lazy
        [| yield! Directory.GetFiles(Path.Combine(repoRoot, "examples"), "*.lens")
           yield! Directory.GetFiles(Path.Combine(repoRoot, "tests", "golden"), "*.lens",
                                     SearchOption.AllDirectories) |]
        |> Array.sort
        |> Array.map File.ReadAllText

/// Pieces a mutation inserts: syntax, extreme numbers, deep nesting, control characters, large inputs.
let fragments =
    [| "("; ")"; "["; "]"; "{"; "}"; "\""; "\\"; ";"; "#"; ","; "\n"; " except "; " and "; "L1H0"; "L*H*"; "L*"; "H3"
       "L99999999999H0"; "L1H2147483648"; "-1"; "0"; "1e309"; "NaN"; "2147483648"; "9223372036854775808"; "0.5"
       "\u001b[31m"; "\u001b]0;x\u0007"; "\u0000"; "\uFFFF"; "\uD800"; "é"; "\t"; "\r"
       "heads "; "ablate L0H0 {"; "ablate L0H0 mean {"; "ablate mlp L0"; "ablate neurons mlp L0 N1, N2"
       "input tokens [[1,2],[3]]"; "input tokens [1, 2, 3, 4, 5, 6]"; "input \"a\", \"b\""; "input file missing.txt"
       "input file /dev/zero"; "input repeat random 100000 x100000 batch 100000";
       "input repeat random 5 x3 batch 2 seed 1"
       "generate 2147483647"; "generate 3 temperature 0.5 top_k 2 top_p 0.9"; "logits top 0"; "logits top 2000000000"
       "where induction > "; "where prev_token > 0.5 and induction < 2"; "let x = "; "let x = heads L0H0\n"; "print x"
       "score induction"; "score prev_token"; "detect induction"; "show pattern L0H0"; "show scores"; "show tokens"
       "cache save out.safetensors"; "cache load out.safetensors"; "patch resid_pre from tokens [1,2,3,4]"
       "compose k L0H* -> L1H*"; "circuit full_ov L1H0 top 3"; "attribute to 5 vs 7"; "logit_lens"; "predict"; "loss";
       "run"
       String('(', 40); String('[', 40); String.replicate 40 "ablate L0H0 {\n"; String.replicate 1100 " except L0H1" |]

let pick (rng: Random) (items: 'a[]) = items[rng.Next items.Length]

let randomChar (rng: Random) =
    match rng.Next 4 with
    | 0 -> char (rng.Next(0, 32))
    | 1 -> char (rng.Next(32, 127))
    | 2 -> char (rng.Next(127, 0x3000))
    | _ -> "(){}[]\"\\#;,.-<>=*"[rng.Next 17]

/// One to four random edits of a text.
let mutate (rng: Random) (text: string) =
    let mutable t = text
    for _ in 1 .. rng.Next(1, 5) do
        let at () = if t.Length = 0 then 0 else rng.Next(t.Length + 1)
        t <-
            match rng.Next 8 with
            | 0 when t.Length > 0 -> let a = rng.Next t.Length in t.Remove(a, rng.Next(1, min 40 (t.Length - a) + 1))
            | 1 when t.Length > 0 ->
                let a = rng.Next t.Length
                let n = rng.Next(1, min 60 (t.Length - a) + 1)
                t.Insert(at (), t.Substring(a, n))
            | 2 | 3 -> t.Insert(at (), pick rng fragments)
            | 4 when t.Length > 0 -> let a = rng.Next t.Length in t.Remove(a, 1).Insert(a, string (randomChar rng))
            | 5 ->
                let lines = t.Split '\n'
                if lines.Length > 1 then
                    let i, j = rng.Next lines.Length, rng.Next lines.Length
                    let l = lines[i]
                    lines[i] <- lines[j]
                    lines[j] <- l
                String.Join("\n", lines)
            | 6 when t.Length > 0 -> t.Substring(0, rng.Next t.Length)
            | _ ->
                let other = pick rng (corpus.Force())
                t + "\n" + other.Substring(0, rng.Next(1, 80) |> min other.Length)
    t

/// A .lens text: a mutated seed text, random fragments, or random bytes decoded as UTF-8.
let lensText (rng: Random) =
    match rng.Next 10 with
    | 0 -> let b = Array.zeroCreate (rng.Next 400) in rng.NextBytes b; Encoding.UTF8.GetString b
    | 1 -> String.Join(" ", Array.init (rng.Next(1, 12)) (fun _ -> pick rng fragments))
    | _ -> mutate rng (pick rng (corpus.Force()))

let hash (path: string) =
    if File.Exists path then Convert.ToHexString(SHA256.HashData(File.ReadAllBytes path)) else "absent"

/// Runs a case on a worker with a time limit; a hang fails the test naming the case.
let bounded (what: string) (work: unit -> unit) =
    let job = Task.Run(fun () -> work ())
    if not (job.Wait caseLimit) then failtestf "hang: %s did not finish within %O" what caseLimit

let describe (text: string) = if text.Length > 300 then text.Substring(0, 300) + "..." else text

// ---- the in-process entry points and what each may throw -------------------------------------------------

let lensCase (dir: string) (text: string) =
    let script =
        try Some(Parser.Parse(text, "fuzz.lens"))
        with :? DslParseException as e ->
            Expect.isFalse (e.Message.Contains '\u001b') "a parse error shows no raw escape"
            None
    match script with
    | None -> ()
    | Some script ->
        // What parses prints as text that parses back to the same statements.
        let printed = Printer.Print script
        let back =
            try Parser.Parse(printed, "printed.lens")
            with :? DslParseException as e -> failtestf "the printed text does not parse: %s\n%s" e.Message printed
        Expect.sequenceEqual back.Statements script.Statements (sprintf "the printed text reads back:\n%s" printed)
        use env =
            new ExperimentEnvironment(FileName = "fuzz.lens", SourceText = text, ModelOverride = tinyDir,
                                      ReadDirectory = dir, WriteDirectory = dir)
        let pipeline = Pipeline.FromScript script
        let errors =
            try
                ExperimentPaths.Check(script.Statements, env, [||], fun p -> raise (ArgumentException p))
                pipeline.Check(ExperimentState.Start env)
            with :? OutputPathException as e -> [| SemanticError("fuzz.lens", 0, 0, null, "", e.Message) |] :> _
        if errors.Count = 0 then
            try pipeline.Apply(ExperimentState.Start env) |> ignore
            with :? ExperimentRunException -> ()

let safetensorsBytes (rng: Random) (valid: byte[]) =
        match rng.Next 4 with
        | 0 -> valid[.. rng.Next valid.Length - 1]
        | 1 ->
            let b = Array.copy valid
            for _ in 1 .. rng.Next(1, 8) do b[rng.Next(min b.Length 400)] <- byte (rng.Next 256)
            b
        | 2 ->
            let dims =
                String.Join(",",
                            Array.init (rng.Next 5)
                                (fun _ ->
                                    pick rng [| "0"; "1"; "2"; "7"; "-1"; "4611686018427387904"; "9223372036854775807";
                                                "1.5"; "\"x\"" |]))
            let dtype = pick rng [| "F32"; "F16"; "BF16"; "I64"; "BOOL"; "U8"; "F8"; "X"; "" |]
            let a, b = rng.Next(-2, 64), rng.Next(-2, 64)
            let header =
                sprintf """{"t":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}%s}""" dtype dims a b
                    (if rng.Next 2 = 0 then ""","__metadata__":{"k":"v"}""" else "")
            let h = Encoding.UTF8.GetBytes header
            let data = Array.zeroCreate (rng.Next 64)
            Array.concat
                [ BitConverter.GetBytes(uint64 (if rng.Next 8 = 0 then int64 (rng.Next()) else int64 h.Length)); h;
                  data ]
        | _ -> let b = Array.zeroCreate (rng.Next 64) in rng.NextBytes b; b

let safetensorsCase (dir: string) (bytes: byte[]) =
    let path = Path.Combine(dir, "fuzz.safetensors")
    File.WriteAllBytes(path, bytes)
    try
        use file = SafetensorsFile.Open path
        for name in Seq.toArray file.Names do
            use t = file.Load name
            ()
    with :? SafetensorsException -> ()

let configFields =
    [| "n_layers"; "d_model"; "n_ctx"; "d_head"; "n_heads"; "d_mlp"; "d_vocab"; "d_vocab_out"; "eps"; "rotary_dim";
       "rotary_base"
       "n_key_value_heads"; "window_size"; "attn_scale"; "initializer_range"; "positional_embedding_type"; "act_fn";
       "normalization_type" |]

let configValues : (unit -> JsonNode)[] =
    [| (fun () -> JsonValue.Create(-4)); (fun () -> JsonValue.Create(-1)); (fun () -> JsonValue.Create(0));
       (fun () -> JsonValue.Create(1))
       (fun () -> JsonValue.Create(2)); (fun () -> JsonValue.Create(3)); (fun () -> JsonValue.Create(4));
       (fun () -> JsonValue.Create(8))
       (fun () -> JsonValue.Create(64)); (fun () -> JsonValue.Create(2000000000));
       (fun () -> JsonValue.Create(Int32.MaxValue))
       (fun () -> JsonValue.Create(1.5)); (fun () -> JsonValue.Create(-0.5)); (fun () -> JsonValue.Create(1e300));
       (fun () -> JsonValue.Create "NaN")
       (fun () -> JsonValue.Create "rotary"); (fun () -> JsonValue.Create "gelu"); (fun () -> JsonValue.Create "RMS");
       (fun () -> JsonValue.Create "x")
       (fun () -> JsonValue.Create true); (fun () -> null) |]

let configJson (rng: Random) (baseConfig: string) =
    let cfg = JsonNode.Parse(baseConfig).AsObject()
    let changed = [ for _ in 1 .. rng.Next(1, 4) -> pick rng configFields ]
    for field in changed do cfg[field] <- (pick rng configValues) ()
    cfg.ToJsonString()

let configCase (json: string) =
    let accepted =
        try Some(HookedTransformerConfig.FromJson(json, "config.json"))
        with
        | :? ArgumentException as e ->
            Expect.isTrue (e.Message.StartsWith "config.json: ") (sprintf "the refusal names the file: %s" e.Message)
            None
        | :? FormatException as e ->
            Expect.stringContains e.Message "config.json" "names the file"
            None
    match accepted with
    | Some c when MemoryEstimate.ParameterBytes c < 64e6 ->
        use scope = TorchSharp.torch.NewDisposeScope()
        use model = new HookedTransformer(c)
        let n = min 4 c.NCtx
        use tokens = TorchSharp.torch.tensor(Array2D.init 1 n (fun _ i -> int64 (i % c.DVocab)))
        use logits = model.Forward(tokens)
        Expect.equal logits.shape[2] (int64 c.DVocabOut) "logits over the vocabulary"
    | _ -> ()

let randomJson (rng: Random) =
    let rec value depth =
        match rng.Next(if depth > 3 then 6 else 9) with
        | 0 -> string (rng.Next(-5, 60000))
        | 1 -> pick rng [| "50257"; "-1"; "1.5"; "1e20"; "9223372036854775808"; "0"; "99" |]
        | 2 -> "\"a\""
        | 3 -> pick rng [| "true"; "null"; "{}" |]
        | 4 | 5 -> string (rng.Next 100)
        | _ -> "[" + String.Join(",", Array.init (rng.Next 5) (fun _ -> value (depth + 1))) + "]"
    match rng.Next 6 with
    | 0 -> let b = Array.zeroCreate (rng.Next 20) in rng.NextBytes b; Encoding.UTF8.GetString b
    | _ -> value 0

let tokensCase (json: string) =
    try
        use t = Lens.Cli.Commands.CacheCommand.ParseTokens(json)
        Expect.equal (t.dim()) 2L "[batch, pos]"
    with :? Lens.Cli.UsageException as e -> Expect.stringContains e.Message "--tokens" "names --tokens"

// ---- the process sample ------------------------------------------------------------------------------------

let processCase (rng: Random) (dir: string) (k: int) =
    let lensFile = Path.Combine(dir, sprintf "sample-%d.lens" k)
    File.WriteAllText(lensFile, lensText rng)
    let inputs = [ lensFile; Path.Combine(tinyDir, "config.json"); Path.Combine(tinyDir, "model.safetensors") ]
    let before = inputs |> List.map hash
    let args =
        match k % 4 with
        | 0 -> [ "check"; lensFile; "--model"; tinyDir ]
        | 1 -> [ "run"; lensFile; "--model"; tinyDir; "--json"; Path.Combine(dir, "out.json") ]
        | 2 -> [ "cache"; tinyDir; "--tokens"; randomJson rng; "--out"; Path.Combine(dir, "acts.safetensors") ]
        | _ -> [ "run"; lensFile; "--model"; tinyDir ]
    let r = lensIn dir [ "HF_HUB_OFFLINE", "1" ] args
    let what = sprintf "lens %s (file: %s)" (String.Join(" ", args)) (describe (File.ReadAllText lensFile))
    Expect.contains [ 0; 1; 2 ] r.ExitCode (sprintf "%s: exit code %d\n%s" what r.ExitCode r.Stderr)
    Expect.isFalse (r.Stderr.Contains "   at " || r.Stderr.Contains "Unhandled exception")
        (sprintf "%s: a stack trace\n%s" what r.Stderr)
    if r.ExitCode <> 0 then Expect.isTrue (r.Stderr.Trim().Length > 0) (sprintf "%s: a failure says why" what)
    Expect.equal (inputs |> List.map hash) before (sprintf "%s: inputs unchanged" what)

[<Tests>]
let tests =
    testList "fuzz" [
        test "random and mutated inputs end in a result or a named refusal, within the time budget" {
            let rng = Random seed
            let dir = Path.Combine(scratch.Force(), "in-process")
            Directory.CreateDirectory dir |> ignore
            let valid = File.ReadAllBytes(Path.Combine(tinyDir, "model.safetensors"))
            let baseConfig = File.ReadAllText(Path.Combine(tinyDir, "config.json"))
            let counts = Collections.Generic.Dictionary<string, int>()
            let clock = Stopwatch.StartNew()
            let failures = ResizeArray<string>()
            let mutable k = 0
            while clock.Elapsed < inProcessBudget do
                let kind, run, shown =
                    match k % 6 with
                    | 0 | 1 | 2 -> let text = lensText rng in "lens text", (fun () -> lensCase dir text), text
                    | 3 ->
                        let bytes = safetensorsBytes rng valid
                        "safetensors", (fun () -> safetensorsCase dir bytes),
                            Encoding.Latin1.GetString(bytes[.. min 200 bytes.Length - 1])
                    | 4 -> let json = configJson rng baseConfig in "config.json", (fun () -> configCase json), json
                    | _ -> let json = randomJson rng in "--tokens", (fun () -> tokensCase json), json
                try bounded kind run
                with e ->
                    let e = match e with :? AggregateException as a -> a.InnerException | e -> e
                    failures.Add(sprintf "case %d (%s): %s: %s\n  input: %A" k kind (e.GetType().Name)
                                     (e.Message.Split('\n')[0]) (describe shown))
                counts[kind] <- (match counts.TryGetValue kind with | true, n -> n + 1 | _ -> 1)
                k <- k + 1
            if failures.Count > 0 then
                failtestf "%d of %d cases failed:\n%s" failures.Count k (String.Join("\n", failures |> Seq.truncate 25))
            let inProcessSeconds = clock.Elapsed.TotalSeconds
            let processDir = Path.Combine(scratch.Force(), "process")
            Directory.CreateDirectory processDir |> ignore
            let processClock = Stopwatch.StartNew()
            for p in 0 .. processSamples - 1 do processCase rng processDir p
            let summary =
                String.Join(", ", counts |> Seq.map (fun kv -> sprintf "%d %s" kv.Value kv.Key))
            printfn "fuzz (seed %d): %d in-process cases in %.1f s (%s); %d lens processes in %.1f s"
                seed k inProcessSeconds summary processSamples processClock.Elapsed.TotalSeconds
        }
    ]
