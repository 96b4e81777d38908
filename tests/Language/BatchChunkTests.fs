/// Inputs larger than the memory budget run in chunks of rows (BatchChunks): `lens check` says how many, and each
/// chunked statement's output equals the one-batch output (padded texts of different lengths included).
module Lens.Tests.BatchChunkTests

open System
open Expecto
open Lens
open Lens.Dsl.Runtime
open Lens.Tests.DslRuntimeTests
open Lens.Tests.Processes

let private texts =
    [| "The cat sat on the mat."; "A much longer sentence about a dog that ran across the field."; "Hello."
       "Once upon a time there was a small robot."; "Lens runs in chunks." |]

/// Runs experiment text with an optional memory budget; the state and each chunked statement's number of chunks.
let private runWith (budget: int64 option) (text: string) =
    use env = new ExperimentEnvironment(FileName = "test.lens", SourceText = text,
                                        ReadDirectory = Lens.Tests.TestSupport.repoRoot,
                                        MemoryBudget = Option.toNullable budget)
    let state = Pipeline.Parse(text, "test.lens").Execute env
    state, [ for p in env.ChunkPlans.Values -> p.Statement.GetType().Name, p.Chunks ]

/// The budget under which `rows` rows of a statement's forward fit, and not one more.
let private budgetFor (cfg: HookedTransformerConfig) (rows: int) (positions: int) (cacheEveryLayer: bool) =
    int64
        (MemoryEstimate.ParameterBytes cfg
            + MemoryEstimate.ForwardBytes(cfg, int64 rows, int64 positions, cacheEveryLayer)) + 1L

let private sameCell (what: string) (a: obj) (b: obj) =
    match a, b with
    | (:? float as x), (:? float as y) ->
        if abs (x - y) > 1e-6 * max 1.0 (abs y) then failtestf "%s: %g in chunks, %g in one batch" what x y
    | (:? float32 as x), (:? float32 as y) ->
        if abs (x - y) > 1e-6f * max 1.0f (abs y) then failtestf "%s: %g in chunks, %g in one batch" what x y
    | _ -> Expect.equal a b what

let private sameTable (command: string) (chunked: ExperimentState) (whole: ExperimentState) =
    let table (v: ResultValue) = match v with :? LogitsValue as l -> box l.Listed | v -> box v
    match table (result command chunked).Value, table (result command whole).Value with
    | (:? TableValue as c), (:? TableValue as w) ->
        Expect.equal c.Rows.Length w.Rows.Length (command + ": rows")
        for i in 0 .. w.Rows.Length - 1 do
            for j in 0 .. w.Rows.[i].Length - 1 do
                sameCell (sprintf "%s row %d column %s" command i w.Columns.[j]) c.Rows.[i].[j] w.Rows.[i].[j]
    | c, w -> failtestf "%s gave %s and %s" command (c.GetType().Name) (w.GetType().Name)

/// A safetensors file read from the format's description alone (u64 little-endian header length, a JSON header of
/// name → dtype, shape, data_offsets, then the data): each tensor's dtype, shape and bytes; checks that the data is
/// covered exactly, tensor after tensor.
let private readSafetensors (bytes: byte[]) =
    let length = int (BitConverter.ToUInt64(bytes, 0))
    use header = Text.Json.JsonDocument.Parse(ReadOnlyMemory(bytes, 8, length))
    let start = 8 + length
    let entries =
        [ for p in header.RootElement.EnumerateObject() do
            if p.Name <> "__metadata__" then
                let ints (field: string) = [| for d in p.Value.GetProperty(field).EnumerateArray() -> d.GetInt64() |]
                let offsets = ints "data_offsets"
                p.Name, p.Value.GetProperty("dtype").GetString(), ints "shape", offsets.[0], offsets.[1] ]
    let ends =
        entries |> List.sortBy (fun (_, _, _, b, _) -> b)
            |> List.fold (fun at (n, _, _, b, e) -> (if b <> at then failtestf "%s starts at %d, not %d" n b at); e) 0L
    Expect.equal (int64 start + ends) bytes.LongLength "the data ends where the file does"
    entries |> List.map (fun (n, d, shape, b, e) -> n, (d, shape, bytes.[start + int b .. start + int e - 1]))
        |> Map.ofList

/// Each `print HOOK` of a chunked run against one batch's: the same shape, statistics to 1e-6 relative, the same first
/// entries.
let private samePrints (chunked: ExperimentState) (whole: ExperimentState) =
    List.iter2 (fun (c: ExperimentResult) (w: ExperimentResult) ->
        match c.Value, w.Value with
        | (:? ActivationValue as a), (:? ActivationValue as b) ->
            Expect.sequenceEqual a.Shape b.Shape (b.Hook + ": the whole batch's shape")
            for what, x, y in [ "mean", a.Mean, b.Mean; "std", a.Std, b.Std; "min", a.Min, b.Min; "max", a.Max, b.Max;
                                "norm", a.Norm, b.Norm ] do
                if abs (x - y) > 1e-6 * max 1e-3 (abs y) then
                    failtestf "%s %s: %.12g in chunks, %.12g in one batch" b.Hook what x y
            Expect.equal a.First.Length 8 "the first 8 entries"
            Array.iteri2 (fun i x y ->
                if abs (x - y) > 1e-6 * max 1.0 (abs y) then
                    failtestf "%s entry %d: %g in chunks, %g in one batch" b.Hook i x y) a.First b.First
        | a, b -> failtestf "print gave %s and %s" a.Kind b.Kind) (results "print" chunked) (results "print" whole)

/// The first `show` (a pattern) of a run that computed row 0 alone against one batch's: the same text, plus the note,
/// and the same figure.
let private sameShow (chunked: ExperimentState) (whole: ExperimentState) (rows: int) =
    match (results "show" chunked).[0].Value, (results "show" whole).[0].Value with
    | (:? FigureValue as c), (:? FigureValue as w) ->
        Expect.stringStarts c.ConsoleText w.ConsoleText "the same heads, positions and weights"
        Expect.stringContains c.ConsoleText
            (sprintf "(only row 0 of the %d rows was run: the whole input does not fit the memory budget)" rows)
            "says that only row 0 ran"
        // The same figure, but for the element ids each figure numbers anew.
        let figure (html: string) = Text.RegularExpressions.Regex.Replace(html, @"lens-ap-[0-9a-f]+-\d+", "lens-ap-ID")
        Expect.equal (figure c.Figure.Html) (figure w.Figure.Html) "the same figure"
    | c, w -> failtestf "show gave %s and %s" c.Kind w.Kind

let private quoted (rows: string[]) = rows |> Array.map (sprintf "\"%s\"") |> String.concat ", "

[<Tests>]
let tests =
    testList "batch chunks" [
        testCase ("run, loss, logits, predict, attribute, logit_lens on five padded texts in 3 or more chunks equal "
                  + "one batch") <| fun () ->
            let text =
                sprintf "model %s\ninput %s\nrun\nloss\nlogits top 3\npredict\nattribute\nlogit_lens\n"
                    Lens.Tests.PaddedStatementTests.modelDir.Value
                               (texts |> Array.map (sprintf "\"%s\"") |> String.concat ", ")
            let whole, plans = runWith None text
            Expect.isEmpty plans "one batch without a budget"
            let input = whole.Input
            let chunked, chunkPlans = runWith (Some (budgetFor whole.Model.Model.Config 2 input.Positions false)) text
            Expect.sequenceEqual (chunkPlans |> List.map snd |> List.take 4) [ 3; 3; 3; 3 ]
                "each forward statement runs in 3 chunks of at most 2 rows"
            Expect.equal chunkPlans.Length 6 "attribute and logit_lens run in chunks too"
            Expect.isTrue (chunkPlans |> List.forall (fun (_, c) -> c >= 3))
                "(of fewer rows: they keep every layer's activations)"
            for command in [ "run"; "logits"; "predict"; "logit_lens" ] do sameTable command chunked whole
            let c, w = grid (result "attribute" chunked), grid (result "attribute" whole)
            for l in 0 .. w.Length - 1 do
                for h in 0 .. w.[l].Length - 1 do
                    sameCell (sprintf "attribute L%dH%d" l h) (box c.[l].[h]) (box w.[l].[h])
            for kv in (result "attribute" whole).Value.Summary do
                let chunkedValue = (result "attribute" chunked).Value.Summary |> Seq.find (fun x -> x.Key = kv.Key)
                sameCell ("attribute " + kv.Key) (box chunkedValue.Value) (box kv.Value)
            let loss (s: ExperimentState) = scalarOf (result "loss" s)
            if abs (loss chunked - loss whole) > 1e-6 then
                failtestf "loss: %g in chunks, %g in one batch" (loss chunked) (loss whole)

        testCase "greedy generate on five padded texts in chunks equals one batch; sampled generate is not chunked"
        <| fun () ->
            let text = sprintf "model %s\ninput %s\ngenerate 3 greedy\n" Lens.Tests.PaddedStatementTests.modelDir.Value
                               (texts |> Array.map (sprintf "\"%s\"") |> String.concat ", ")
            let whole, _ = runWith None text
            let positions = whole.Input.Positions + 3
            let chunked, plans = runWith (Some (budgetFor whole.Model.Model.Config 2 positions false)) text
            Expect.sequenceEqual (plans |> List.map snd) [ 3 ] "5 rows in 3 chunks of at most 2"
            match (result "generate" chunked).Value, (result "generate" whole).Value with
            | (:? TextValue as c), (:? TextValue as w) ->
                Expect.sequenceEqual c.Texts w.Texts "the same texts, row by row"
                Expect.equal c.Ids.Length w.Ids.Length "rows"
                for r in 0 .. w.Ids.Length - 1 do
                    Expect.sequenceEqual c.Ids.[r] w.Ids.[r] (sprintf "row %d's new tokens" r)
            | c, w -> failtestf "generate gave %s and %s" c.Kind w.Kind
            let sampled = text.Replace("generate 3 greedy", "generate 3 temperature 0.7")
            // Sampling draws in batch order, so chunks would sample differently: above the budget it is refused, not
            // chunked.
            let refused =
                try
                    runWith (Some (budgetFor whole.Model.Model.Config 2 positions false)) sampled |> ignore
                    None
                with e -> Some e.Message
            Expect.isSome refused "sampled generate above the budget is refused"
            Expect.stringContains refused.Value "needs an estimated" "with the memory it needs"

        testCase "score on a repeated input in chunks equals one batch" <| fun () ->
            let text =
                sprintf "%sinput repeat random 6 x2 batch 7 seed 3\nscore induction\nscore prev_token\n" tinyModel
            let whole, _ = runWith None text
            let chunked, plans = runWith (Some (budgetFor whole.Model.Model.Config 3 whole.Input.Positions true)) text
            Expect.sequenceEqual (plans |> List.map snd) [ 3; 3 ] "7 rows in chunks of 3"
            for i in 0 .. 1 do
                let c, w = grid (results "score" chunked).[i], grid (results "score" whole).[i]
                for l in 0 .. w.Length - 1 do
                    for h in 0 .. w.[l].Length - 1 do
                        if abs (c.[l].[h] - w.[l].[h]) > 1e-6 then
                            failtestf "score %d L%dH%d: %g in chunks, %g in one batch" i l h c.[l].[h] w.[l].[h]

        testCase ("the peak memory (max RSS of `lens run`) stays bounded when the rows grow fourfold under a fixed "
                  + "budget") <| fun () ->
            if not (IO.File.Exists "/usr/bin/time") then
                Lens.Tests.TestSupport.skipOrFailMissing "GNU time (/usr/bin/time), to read the child's max RSS"
                    "install Debian's 'time' package (.ci/run does)"
            let dir = IO.Path.Combine(IO.Path.GetTempPath(), sprintf "lens-chunks-%d" Environment.ProcessId)
            IO.Directory.CreateDirectory dir |> ignore
            let peakKb (rows: int) =
                let file = IO.Path.Combine(dir, sprintf "m%d.lens" rows)
                IO.File.WriteAllText(file,
                                     sprintf "model %s\ninput repeat random 10 batch %d\nloss\nscore induction\n"
                                         tinyDir rows)
                let timing = IO.Path.Combine(dir, sprintf "time%d.txt" rows)
                let r =
                    Processes.run "/usr/bin/time" [ "-f"; "%M"; "-o"; timing; "dotnet"; lensDll; "run"; file ] dir
                        [ MemoryEstimate.LimitVariable, "50M" ] (TimeSpan.FromMinutes 5.0)
                Expect.equal r.ExitCode 0 r.Stderr
                float (IO.File.ReadAllText(timing).Trim()) * 1024.0
            let small, large = peakKb 2000, peakKb 8000
            let cfg =
                (Lens.Tests.DslRuntimeTests.run
                    (tinyModel + "input repeat random 10 batch 1\nloss\n")).Model.Model.Config
            // What 6000 more rows would add in one batch (every layer's activations, as `score` keeps them).
            let unchunked = MemoryEstimate.ForwardBytes(cfg, 6000L, 20L, true)
            if large - small > 0.5 * unchunked then
                failtestf "the peak grew by %.1f MB from 2000 to 8000 rows (one batch would add an estimated %.1f MB)"
                    ((large - small) / 1e6) (unchunked / 1e6)
            try IO.Directory.Delete(dir, true) with _ -> ()

        testCase "patch (logit_diff and loss) and attribute patch in chunks equal one batch" <| fun () ->
            let text =
                sprintf
                    "%sinput repeat random 6 x2 batch 7 seed 3\n\
                     patch resid_pre from repeat random 6 x2 batch 7 seed 4 metric logit_diff 3 5\n\
                     patch heads from repeat random 6 x2 batch 7 seed 4\n\
                     attribute patch resid_pre from repeat random 6 x2 batch 7 seed 4\n" tinyModel
            let whole, _ = runWith None text
            let chunked, plans = runWith (Some (budgetFor whole.Model.Model.Config 3 whole.Input.Positions true)) text
            Expect.sequenceEqual (plans |> List.map snd) [ 3; 3; 3 ] "7 rows in chunks of 3"
            let c, w = results "patch" chunked, results "patch" whole
            match c.[0].Value, w.[0].Value with
            | (:? TensorValue as a), (:? TensorValue as b) ->
                Expect.sequenceEqual a.Shape b.Shape "shape"
                Array.iteri2 (fun i x y -> sameCell (sprintf "resid_pre cell %d" i) (box x) (box y)) a.Values b.Values
            | a, b -> failtestf "patch gave %s and %s" a.Kind b.Kind
            let gc, gw = grid c.[1], grid w.[1]
            for l in 0 .. gw.Length - 1 do
                for h in 0 .. gw.[l].Length - 1 do
                    sameCell (sprintf "heads L%dH%d" l h) (box gc.[l].[h]) (box gw.[l].[h])
            match (result "attribute" chunked).Value, (result "attribute" whole).Value with
            | (:? TensorValue as a), (:? TensorValue as b) ->
                Array.iteri2 (fun i x y ->
                    if abs (x - y) > 1e-6 then failtestf "attribute patch cell %d: %g in chunks, %g in one batch" i x y)
                    a.Values b.Values
            | a, b -> failtestf "attribute patch gave %s and %s" a.Kind b.Kind
            for i in 0 .. 1 do
                for kv in w.[i].Value.Summary do
                    sameCell (sprintf "patch %d %s" i kv.Key)
                        (box (c.[i].Value.Summary |> Seq.find (fun x -> x.Key = kv.Key)).Value) (box kv.Value)

        testCase ("cache save on five padded texts in 3 chunks writes the bytes one batch writes, which hold a direct "
                  + "forward's activations") <| fun () ->
            let file = IO.Path.Combine(Lens.Tests.CoreTests.tempDir (), "acts.safetensors")
            let text =
                sprintf "model %s\ninput %s\ncache save %s\n" Lens.Tests.PaddedStatementTests.modelDir.Value
                    (quoted texts) file
            let whole, plans = runWith None text
            Expect.isEmpty plans "one batch without a budget"
            let oneBatch = IO.File.ReadAllBytes file
            let chunked, chunkPlans =
                runWith (Some (budgetFor whole.Model.Model.Config 2 whole.Input.Positions true)) text
            Expect.sequenceEqual (chunkPlans |> List.map snd) [ 3 ] "5 rows in 3 chunks of at most 2"
            let inChunks = IO.File.ReadAllBytes file
            Expect.equal inChunks.Length oneBatch.Length "the same length"
            match Array.tryFindIndex id (Array.map2 (<>) inChunks oneBatch) with
            | Some i -> failtestf "byte %d differs: %d in chunks, %d in one batch" i inChunks.[i] oneBatch.[i]
            | None -> ()
            let tensors = readSafetensors inChunks
            let input = whole.Input
            let _, maskShape, maskBytes = tensors.["attention_mask"]
            Expect.sequenceEqual maskShape [| 5L; int64 input.Positions |] "the mask of every row"
            Expect.sequenceEqual (Array.init (maskBytes.Length / 8) (fun i -> BitConverter.ToInt64(maskBytes, 8 * i)))
                (Array.concat input.Mask) "the input's mask"
            // A forward of its own (loaded apart from the experiment's, float32 rounding apart).
            use model = HookedTransformer.Load Lens.Tests.PaddedStatementTests.modelDir.Value
            use tokens = input.ToTensor TorchSharp.torch.CPU
            use mask = input.MaskTensor TorchSharp.torch.CPU
            for hook in [ "blocks.0.attn.hook_pattern"; "blocks.1.hook_resid_post"; "ln_final.hook_normalized" ] do
                use run = model.RunWithCache(tokens, ReturnType.Logits, (fun n -> n = hook), attentionMask = mask)
                let dtype, shape, data = tensors.[hook]
                Expect.equal dtype "F32" hook
                Expect.sequenceEqual shape run.Cache.[hook].shape (hook + ": the whole batch's shape")
                let expected = floats run.Cache.[hook]
                Array.iteri (fun i (e: float32) ->
                    let a = BitConverter.ToSingle(data, 4 * i)
                    if abs (a - e) > 1e-5f * max 1.0f (abs e) then
                        failtestf "%s entry %d: %g in the file, %g from the forward" hook i a e) expected
            match (result "cache" chunked).Value, (result "cache" whole).Value with
            | (:? FileValue as c), (:? FileValue as w) ->
                Expect.sequenceEqual c.Names w.Names "the same tensors listed"
                Expect.equal (set c.Names) (tensors |> Map.keys |> set) "the file holds the tensors the result lists"
            | c, w -> failtestf "cache save gave %s and %s" c.Kind w.Kind

        testCase "print HOOK on five padded texts in 3 chunks gives one batch's shape and statistics" <| fun () ->
            let text =
                sprintf
                    "model %s\ninput %s\nprint blocks.0.hook_resid_post\nprint blocks.1.attn.hook_pattern\n\
                     print ln_final.hook_normalized\n"
                               Lens.Tests.PaddedStatementTests.modelDir.Value (quoted texts)
            let whole, _ = runWith None text
            let chunked, plans = runWith (Some (budgetFor whole.Model.Model.Config 2 whole.Input.Positions false)) text
            Expect.sequenceEqual (plans |> List.map snd) [ 3; 3; 3 ] "5 rows in 3 chunks of at most 2, for each print"
            samePrints chunked whole
            Expect.isTrue (results "print" whole |> List.forall (fun r -> (r.Value :?> ActivationValue).Shape.[0] = 5L))
                "five rows"

        testCase "show pattern above the budget runs row 0 alone and draws what one batch draws" <| fun () ->
            let text =
                sprintf "model %s\ninput %s\nshow pattern L1\nshow tokens\n"
                    Lens.Tests.PaddedStatementTests.modelDir.Value (quoted texts)
            let whole, _ = runWith None text
            let budget = budgetFor whole.Model.Model.Config 1 whole.Input.Positions true
            let chunked, plans = runWith (Some budget) text
            Expect.sequenceEqual plans [ "ShowStatement", 1 ]
                "show pattern runs one chunk, row 0; show tokens needs no plan (it runs row 0 anyway)"
            sameShow chunked whole 5
            // Not even one row: refused at the check.
            let tooSmall =
                budget - int64
                    (MemoryEstimate.ForwardBytes(whole.Model.Model.Config, 1L, int64 whole.Input.Positions, true))
            use env =
                new ExperimentEnvironment(FileName = "test.lens", SourceText = text,
                                          ReadDirectory = Lens.Tests.TestSupport.repoRoot,
                                          MemoryBudget = Nullable tooSmall)
            let errors =
                Pipeline.Parse(text, "test.lens").Check(ExperimentState.Start env) |> Seq.map string
                    |> String.concat "\n"
            Expect.stringContains errors "test.lens:3:1: even one row of the input" "show pattern names its line"

        testCase ("on the demo model (trained induction heads): cache save, print and show pattern above the budget "
                  + "equal one batch") <| fun () ->
            let file = IO.Path.Combine(Lens.Tests.CoreTests.tempDir (), "demo.safetensors")
            let input = "model demo-attn-only-2l\ninput repeat random 12 x2 batch 7 seed 11\n"
            let saveAndShow =
                input + sprintf "cache save %s filter \"blocks.*.hook_resid_post\"\nshow pattern L1\n" file
            let whole, _ = runWith None saveAndShow
            let oneBatch = IO.File.ReadAllBytes file
            let cfg, positions = whole.Model.Model.Config, whole.Input.Positions
            let chunked, plans = runWith (Some (budgetFor cfg 2 positions true)) saveAndShow
            Expect.sequenceEqual plans [ "CacheStatement", 4; "ShowStatement", 1 ]
                "7 rows in 4 chunks of at most 2; show pattern on row 0 alone"
            Expect.isTrue (IO.File.ReadAllBytes file = oneBatch) "cache save writes the same bytes"
            sameShow chunked whole 7
            let prints = input + "print blocks.1.attn.hook_pattern\nprint blocks.1.hook_resid_post\n"
            let whole, _ = runWith None prints
            let chunked, plans = runWith (Some (budgetFor cfg 2 positions false)) prints
            Expect.sequenceEqual (plans |> List.map snd) [ 4; 4 ] "each print in 4 chunks of at most 2 rows"
            samePrints chunked whole

        testCase "a budget below one row is refused at the check, naming the statement" <| fun () ->
            let text = sprintf "%sinput repeat random 6 x2 batch 7 seed 3\nloss\n" tinyModel
            use env =
                new ExperimentEnvironment(FileName = "test.lens", SourceText = text,
                                          ReadDirectory = Lens.Tests.TestSupport.repoRoot,
                                          MemoryBudget = Nullable 1000L)
            let errors =
                Pipeline.Parse(text, "test.lens").Check(ExperimentState.Start env) |> Seq.map string
                    |> String.concat "\n"
            Expect.stringContains errors "test.lens:3:1: even one row of the input"
                "at the statement, saying one row does not fit"
    ]
