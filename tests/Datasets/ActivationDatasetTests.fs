/// Activation datasets (issue 17): lens harvest's packing (TransformerLens's tokenize_and_concatenate), its
/// datasets.save_to_disk layout, values against RunWithCache on the same rows, shards and merge byte for byte,
/// resuming after an interruption (in process and by SIGKILL of a CLI process), the reader, an independent
/// reader (apache-arrow in JavaScript), and refusals of bad input.
module Lens.Tests.ActivationDatasetTests

open System
open System.IO
open System.Text.Json
open System.Threading
open Expecto
open TorchSharp
open Lens
open Lens.Datasets
open Lens.Tokenization
open Lens.Tests.TestSupport

/// Every folder these tests write lives under one root, removed when the test process exits.
let private scratchRoot = scratchFolder "lens-harvest-tests"

let private tempFolder () = freshFolderIn scratchRoot "harvest"

/// A real English corpus from the repository's own documentation, as a folder of .txt files (one document per line).
let private corpusOf (bytes: int) =
    let dir = tempFolder ()
    let text =
        [ Path.Combine(repoRoot, "README.md") ]
            @ (Directory.GetFiles(Path.Combine(repoRoot, "docs"), "*.md") |> Array.sort |> List.ofArray)
        |> List.map File.ReadAllText |> String.concat "\n"
    let text = text.Substring(0, min bytes text.Length)
    let half = text.LastIndexOf('\n', text.Length / 2)
    File.WriteAllText(Path.Combine(dir, "a.txt"), text.Substring(0, half))
    File.WriteAllText(Path.Combine(dir, "b.txt"), text.Substring(half + 1))
    dir

let private demo = lazy (ModelLoader.Load "demo-attn-only-2l")
let private hooks = [| "blocks.*.hook_resid_post"; "blocks.0.attn.hook_z" |]

let private options corpus out = HarvestOptions(corpus, hooks, 32, out, Batch = 4, MaxFileBytes = 100_000L)

/// Every file of a folder, by name, with its bytes.
let private filesOf (dir: string) =
    Directory.GetFiles dir |> Array.sort |> Array.map (fun f -> Path.GetFileName f, File.ReadAllBytes f)

let private expectSameFolder (actual: string) (expected: string) =
    let a, e = filesOf actual, filesOf expected
    Expect.sequenceEqual (Array.map fst a) (Array.map fst e) "the same files"
    for (name, bytes), (_, expectedBytes) in Array.zip a e do
        Expect.isTrue (bytes.AsSpan().SequenceEqual(ReadOnlySpan expectedBytes)) (sprintf "%s: identical bytes" name)

let private singleRun = lazy (
    let corpus = corpusOf 20000
    let out = Path.Combine(tempFolder (), "single")
    let result = ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l", options corpus out)
    corpus, out, result)

let private identical (a: torch.Tensor) (b: torch.Tensor) =
    a.dtype = b.dtype && a.shape = b.shape && (use ne = a.ne(b) in use any = ne.any() in not (any.item<bool>()))

let private tokenizer = lazy (Gpt2Tokenizer.Default :> ITokenizer)

[<Tests>]
let tests =
    testSequenced <| testList "activation datasets" [
        testCase "packing is tokenize_and_concatenate's: EOS between documents, BOS per row, the remainder dropped"
        <| fun () ->
            // GPT-2: Hello 15496, " world" 995, The 464, " cat" 3797; BOS = EOS = 50256.
            let rows = TokenPacking.Rows([ "Hello world"; "The cat" ], tokenizer.Force(), 5) |> List.ofSeq
            Expect.equal (rows |> List.map List.ofArray) [ [ 50256L; 15496L; 995L; 50256L; 464L ] ]
                "one row, ' cat' dropped"
            let short = TokenPacking.Rows([ "Hi" ], tokenizer.Force(), 5) |> List.ofSeq
            Expect.equal (short |> List.map List.ofArray) [ [ 50256L; 17250L; 50256L; 50256L; 50256L ] ]
                "a group shorter than a row is padded (pad = EOS)"

        testCase "packing works in datasets.map's groups of 1000 documents" <| fun () ->
            // 1000 × "a" (id 64) joined by EOS: 1999 ids → 999 rows of 2 (one dropped); the 1001st document is its own
            // group, padded.
            let rows = TokenPacking.Rows(Seq.replicate 1001 "a", tokenizer.Force(), 3) |> Array.ofSeq
            Expect.equal rows.Length 1000 "999 + 1 rows"
            Expect.equal (List.ofArray rows.[0]) [ 50256L; 64L; 50256L ] "first row"
            Expect.equal (List.ofArray rows.[998]) [ 50256L; 64L; 50256L ] "last row of the first group"
            Expect.equal (List.ofArray rows.[999]) [ 50256L; 64L; 50256L ] "the second group: 'a' padded with EOS"

        testCase "text files are read as datasets' text builder reads them (str.splitlines, blank lines kept)"
        <| fun () ->
            Expect.equal (CorpusDocuments.Lines "a\r\nb\rc\n\nd\u2028e\n" |> List.ofSeq) [ "a"; "b"; "c"; ""; "d"; "e" ]
                "lines"

        testCase "dataset_info.json and state.json hold the fields datasets' save_to_disk writes" <| fun () ->
            let columns =
                [| DatasetColumn("token_ids", [| 3 |], "int64");
                   DatasetColumn("blocks.0.hook_resid_post", [| 3; 2 |], "float16") |]
            let info = DatasetLayout.InfoJson columns
            use doc = JsonDocument.Parse info
            Expect.sequenceEqual [ for p in doc.RootElement.EnumerateObject() -> p.Name ]
                [ "citation"; "description"; "features"; "homepage"; "license" ]
                "asdict(DatasetInfo): default-factory strings and features, sorted"
            let feature = doc.RootElement.GetProperty("features").GetProperty("blocks.0.hook_resid_post")
            Expect.equal (feature.GetRawText().Replace(" ", "").Replace("\n", ""))
                ("""{"feature":{"feature":{"dtype":"float16","_type":"Value"},"length":2,"_type":"List"},"length":3,"""
                 + """"_type":"List"}""") "List(List(Value('float16'), length=2), length=3)"
            let state = DatasetLayout.StateJson([ "data-00000-of-00001.arrow" ], "0123456789abcdef")
            Expect.equal state ("{\n  \"_data_files\": [\n    {\n      \"filename\": \"data-00000-of-00001.arrow\"\n"
                                + "    }\n  ],\n  \"_fingerprint\": \"0123456789abcdef\",\n"
                                + "  \"_format_columns\": null,\n  \"_format_kwargs\": {},\n  \"_format_type\": null,\n"
                                + "  \"_output_all_columns\": false,\n  \"_split\": null\n}")
                "json.dump(state, indent=2, sort_keys=True)"
            Expect.equal (DatasetLayout.SchemaMetadata columns)
                ("""{"info": {"features": {"token_ids": {"feature": {"dtype": "int64", "_type": "Value"}, "length": """
                 + """3, "_type": "List"}, "blocks.0.hook_resid_post": {"feature": {"feature": {"dtype": "float16", """
                 + """"_type": "Value"}, "length": 2, "_type": "List"}, "length": 3, "_type": "List"}}}}""")
                "ArrowWriter's schema metadata"
            Expect.equal (DatasetLayout.Contiguous(10L, 3, 0), DatasetLayout.Contiguous(10L, 3, 1),
                          DatasetLayout.Contiguous(10L, 3, 2))
                ((0L, 4L), (4L, 7L), (7L, 10L)) "shard(contiguous=True)"

        testCase ("the harvest holds lens cache's activations (RunWithCache, the same names) of the same rows, bit for "
                  + "bit") <| fun () ->
            let _, out, result = singleRun.Force()
            Expect.isGreaterThan result.Rows 20L "a corpus of some rows"
            Expect.isGreaterThan (Directory.GetFiles(out, "data-*.arrow").Length) 3 "several data files"
            let data = ActivationDataset.Open out
            Expect.sequenceEqual [ for c in data.Columns -> c.Name ]
                [ "token_ids"; "blocks.0.attn.hook_z"; "blocks.0.hook_resid_post"; "blocks.1.hook_resid_post" ]
                "columns in the model's order"
            let model = demo.Force()
            let mutable rows = 0L
            for tokens, z, resid in
                    Seq.zip3 (data.RowBatches("token_ids", 4)) (data.RowBatches("blocks.0.attn.hook_z", 4))
                        (data.RowBatches("blocks.1.hook_resid_post", 4)) do
                use tokens = tokens
                use z = z
                use resid = resid
                // lens cache --names with the same hooks: the same filter, so the same attention path (a full cache
                // also records hook_attn_scores/hook_pattern, which takes the unfused path: ~4e-7 away on hook_z).
                use run = model.RunWithCache(tokens, ReturnType.Logits, HookedTransformer.NamesFilter hooks)
                Expect.isTrue (identical z run.Cache.["blocks.0.attn.hook_z"]) "hook_z equal"
                Expect.isTrue (identical resid run.Cache.["blocks.1.hook_resid_post"]) "resid_post equal"
                use full = model.RunWithCache(tokens)
                expectClose 1e-3 "resid_post against a full cache (unfused attention)" resid
                    full.Cache.["blocks.1.hook_resid_post"]
                rows <- rows + tokens.shape.[0]
            Expect.equal rows result.Rows "every row compared"

        testCase "float16 output holds the float32 values rounded to half" <| fun () ->
            let corpus, single, _ = singleRun.Force()
            let out = Path.Combine(tempFolder (), "half")
            ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l",
                                  HarvestOptions(corpus, hooks, 32, out, Batch = 4, Dtype = "float16",
                                                 MaxFileBytes = 100_000L)) |> ignore
            for half, full in
                    Seq.zip (ActivationDataset.Open(out).RowBatches("blocks.1.hook_resid_post", 16))
                        (ActivationDataset.Open(single).RowBatches("blocks.1.hook_resid_post", 16)) do
                use half = half
                use full = full
                Expect.equal half.dtype torch.float16 "stored as float16"
                use rounded = full.to_type(torch.float16)
                Expect.isTrue (identical half rounded) "float32 values rounded to half"

        testCase "three shards merged equal the single run byte for byte; the shard folders read as one dataset"
        <| fun () ->
            let corpus, single, result = singleRun.Force()
            let dir = tempFolder ()
            let shardRows =
                [ for i in 0 .. 2 ->
                    ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l",
                                          HarvestOptions(corpus, hooks, 32, dir, Batch = 4, MaxFileBytes = 100_000L,
                                                         ShardIndex = i, ShardCount = 3)).Rows ]
            Expect.equal (List.sum shardRows) result.Rows "the shards hold every row once"
            Expect.isTrue (shardRows |> List.take 2 |> List.forall (fun r -> r % 4L = 0L))
                "shards are whole batches of 4 rows (the last may end short)"
            let merged = Path.Combine(tempFolder (), "merged")
            HarvestMerge.Run(dir, merged) |> ignore
            expectSameFolder merged single
            let again = HarvestMerge.Run(dir, merged)
            Expect.equal again.RowsComputed 0L "a second merge does nothing"
            let asOne = ActivationDataset.Open dir
            Expect.equal asOne.RowCount result.Rows "shards as one dataset: rows"
            for a, b in
                    Seq.zip (asOne.RowBatches("blocks.0.hook_resid_post", 7))
                        (ActivationDataset.Open(single).RowBatches("blocks.0.hook_resid_post", 7)) do
                use a = a
                use b = b
                Expect.isTrue (identical a b) "shards read as one dataset give the single run's rows"

        testCase ("an interrupted harvest resumes at its first unfinished file to the identical result; a finished one "
                  + "does nothing") <| fun () ->
            let corpus, single, _ = singleRun.Force()
            let out = Path.Combine(tempFolder (), "resumed")
            let partial = HarvestOptions.PartialFolder out
            use cancel = new CancellationTokenSource()
            let watcher =
                Tasks.Task.Run(fun () ->
                    while not cancel.IsCancellationRequested do
                        if Directory.Exists partial
                            && Directory.GetFiles(partial, "data-*.arrow").Length >= 2 then cancel.Cancel()
                        else Thread.Sleep 5)
            let interrupted =
                try ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l", options corpus out, null,
                                          cancel.Token) |> Some
                with :? OperationCanceledException -> None
            cancel.Cancel()
            watcher.Wait()
            Expect.isNone interrupted "the run was interrupted"
            Expect.isFalse (Directory.Exists out) "no dataset folder before the run completes"
            let finished = Directory.GetFiles(partial, "data-*.arrow").Length
            Expect.isGreaterThanOrEqual finished 2 "complete files kept"
            // What a SIGKILL leaves: a temporary file of an unfinished data file.
            File.WriteAllBytes(Path.Combine(partial, ".data-00099-of-00099.arrow.1-0.tmp"), [| 1uy |])
            let resumed = ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l", options corpus out)
            Expect.isGreaterThanOrEqual resumed.FilesReused 2 "finished files are not redone"
            expectSameFolder out single
            let again = ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l", options corpus out)
            Expect.equal again.RowsComputed 0L "a rerun of a finished harvest computes nothing"

        testCase "three lens harvest processes at once, one killed (SIGKILL) and rerun, merge to the single run"
        <| fun () ->
            let corpus, single, _ = singleRun.Force()
            let dir = tempFolder ()
            let args i = [ Processes.lensDll; "harvest"; "demo-attn-only-2l"; "--corpus"; corpus; "--hooks";
                           String.Join(",", hooks); "--context"; "32"
                           "--out"; dir; "--batch"; "4"; "--max-file-bytes"; "100000"; "--shard"; sprintf "%d/3" i ]
            let start i =
                let psi =
                    Diagnostics.ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true,
                                                 UseShellExecute = false)
                for a in args i do psi.ArgumentList.Add a
                Diagnostics.Process.Start psi
            let procs = [ for i in 0 .. 2 -> start i ]
            let victim = procs.[1]
            let partial = HarvestOptions.PartialFolder(Path.Combine(dir, "shard-1-of-3"))
            let deadline = DateTime.UtcNow.AddMinutes 3.0
            // Killed once its manifest records a finished file (a data file is renamed into place just before the
            // manifest is rewritten, so waiting for the file alone races with that write).
            let recordedOne () =
                try
                    Directory.Exists partial
                    && (let m = HarvestManifest.TryRead partial in not (isNull (box m)) && m.CompleteFiles.Count >= 1)
                with _ -> false
            while not victim.HasExited && not (recordedOne ()) && DateTime.UtcNow < deadline do
                Thread.Sleep 2
            Expect.isFalse victim.HasExited "shard 1 was still running when killed"
            victim.Kill()
            victim.WaitForExit()
            for p in [ procs.[0]; procs.[2] ] do
                Expect.isTrue (p.WaitForExit 300000) "the other shards finish"
                Expect.equal p.ExitCode 0 (p.StandardError.ReadToEnd())
            Expect.isFalse (Directory.Exists(Path.Combine(dir, "shard-1-of-3"))) "the killed shard is not complete"
            let rerun = Processes.run "dotnet" (args 1) repoRoot [] (TimeSpan.FromMinutes 5.0)
            Expect.equal rerun.ExitCode 0 rerun.Stderr
            Expect.stringContains rerun.Stdout "files were already complete" "the rerun resumed"
            let merged = Path.Combine(tempFolder (), "merged")
            let m =
                Processes.run "dotnet" [ Processes.lensDll; "harvest"; "merge"; dir; "--out"; merged ] repoRoot []
                    (TimeSpan.FromMinutes 5.0)
            Expect.equal m.ExitCode 0 m.Stderr
            expectSameFolder merged single

        testCase "a pre-tokenized corpus (a datasets folder with token_ids) gives the same rows and activations"
        <| fun () ->
            let _, single, _ = singleRun.Force()
            let out = Path.Combine(tempFolder (), "pretokenized")
            ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l", options single out) |> ignore
            for (name, a), (_, b) in Array.zip (filesOf out) (filesOf single) do
                if name.EndsWith ".arrow" then
                    Expect.isTrue (a.AsSpan().SequenceEqual(ReadOnlySpan b)) (sprintf "%s: identical" name)

        testCase "activation batches for SAE training: [n, d_in] over every position, shuffled by seed through a buffer"
        <| fun () ->
            let _, single, result = singleRun.Force()
            let data = ActivationDataset.Open single
            let batches = data.ActivationBatches("blocks.0.attn.hook_z", 100) |> List.ofSeq
            Expect.equal batches.Head.shape [| 100L; 64L |] "hook_z flattened to head × d_head"
            Expect.equal (batches |> List.sumBy (fun b -> b.shape.[0])) (result.Rows * 32L) "every position once"
            use first = data.RowBatches("blocks.0.attn.hook_z", 4) |> Seq.head
            use firstRows = first.reshape(-1L, 64L).narrow(0L, 0L, 100L)
            Expect.isTrue (identical batches.Head firstRows) "unshuffled: in row order"
            let shuffled seed = data.ActivationBatches("blocks.0.attn.hook_z", 100, Nullable seed, 1000) |> List.ofSeq
            let s1, s2 = shuffled 7, shuffled 7
            for a, b in List.zip s1 s2 do Expect.isTrue (identical a b) "the same seed, the same order"
            use all = torch.cat(batches |> List.toArray, 0L)
            use allShuffled = torch.cat(s1 |> List.toArray, 0L)
            Expect.isFalse (identical all allShuffled) "shuffled"
            let sortedSums (t: torch.Tensor) = (use s = t.sum(1L) in s.data<float32>().ToArray()) |> Array.sort
            Expect.sequenceEqual (sortedSums allShuffled) (sortedSums all) "a permutation of the positions"
            for b in batches @ s1 @ s2 do b.Dispose()

        testCase "from F#: Datasets.openDataset and activationBatches over the shard folders, as from C#" <| fun () ->
            let _, single, result = singleRun.Force()
            let data = Lens.FSharp.Datasets.openDataset single
            Expect.equal data.RowCount result.Rows "rows (from the manifest)"
            let batches =
                data |> Lens.FSharp.Datasets.activationBatches "blocks.1.hook_resid_post" 256 (Some 3) |> List.ofSeq
            Expect.equal (batches |> List.sumBy (fun b -> b.shape.[0])) (result.Rows * 32L) "every position"
            Expect.equal batches.Head.shape [| 256L; 64L |] "[n, d_model]"
            let again = data.ActivationBatches("blocks.1.hook_resid_post", 256, Nullable 3) |> List.ofSeq
            for a, b in List.zip batches again do
                Expect.isTrue (identical a b) "the F# face gives the C# batches"
            for b in batches @ again do b.Dispose()

        testCase "an independent reader (apache-arrow, JavaScript) finds the same values and the datasets metadata"
        <| fun () ->
            let _, single, result = singleRun.Force()
            let js = Path.Combine(repoRoot, "tests", "js")
            if not (Directory.Exists(Path.Combine(js, "node_modules", "apache-arrow"))) then
                skipOrFailMissing "apache-arrow for node (tests/js/node_modules)"
                    "Run: npm ci --prefix tests/js (needs node and the npm registry); CI installs it before the tests."
            let r =
                try
                    Processes.run "node" [ Path.Combine(js, "read-activation-dataset.mjs"); single ] repoRoot []
                        (TimeSpan.FromMinutes 2.0)
                with :? ComponentModel.Win32Exception -> skipOrFailMissing "node" "Install Node.js; CI provides it."
            Expect.equal r.ExitCode 0 r.Stderr
            use doc = JsonDocument.Parse r.Stdout
            let root = doc.RootElement
            let data = ActivationDataset.Open single
            Expect.equal (root.GetProperty("metadata").GetString()) (DatasetLayout.SchemaMetadata data.Columns)
                "the huggingface schema metadata"
            for c in data.Columns do
                let js = root.GetProperty("columns").GetProperty(c.Name)
                Expect.equal (js.GetProperty("rows").GetInt64()) result.Rows (c.Name + ": rows")
                let mutable sum = 0.0
                let first = ResizeArray<float>()
                for batch in data.RowBatches(c.Name, 16) do
                    use batch = batch
                    use flat = batch.to_type(torch.float64).flatten()
                    for v in flat.data<float>().ToArray() do
                        sum <- sum + v
                        if first.Count < 8 then first.Add v
                Expect.equal (js.GetProperty("sum").GetDouble()) sum
                    (c.Name + ": the sum of every value, in order, exactly")
                Expect.sequenceEqual [ for v in js.GetProperty("first").EnumerateArray() -> v.GetDouble() ] first
                    (c.Name + ": first values")

        testCase "bad input is refused before work starts, naming the input" <| fun () ->
            let corpus, single, _ = singleRun.Force()
            let model = demo.Force()
            let message (o: HarvestOptions) =
                messageOf<HarvestException> (fun () -> ActivationHarvest.Run(model, "demo-attn-only-2l", o) |> ignore)
            let out () = Path.Combine(tempFolder (), "x")
            Expect.stringContains (message (options "/no/such/corpus.txt" (out ()))) "--corpus '/no/such/corpus.txt'"
                "missing corpus"
            Expect.stringContains (message (HarvestOptions(corpus, [| "blocks.*.hook_nothing" |], 32, out ())))
                "--hooks 'blocks.*.hook_nothing' matches no hook point" "bad glob"
            Expect.stringContains (message (HarvestOptions(corpus, hooks, 129, out ()))) "--context 129"
                "context over n_ctx"
            let file = Path.Combine(tempFolder (), "a-file")
            File.WriteAllText(file, "")
            Expect.stringContains (message (options corpus file)) "is a file, not a folder" "out is a file"
            Expect.stringContains (message (HarvestOptions(corpus, hooks, 32, out (), Dtype = "bfloat16")))
                "no bfloat16" "bfloat16"
            Expect.stringContains (message (options "c.parquet" (out ()))) "--corpus 'c.parquet': no such file"
                "a missing Parquet corpus"
            Expect.stringContains
                (message (HarvestOptions(corpus, hooks, 32, single, Batch = 8, MaxFileBytes = 100_000L)))
                "other settings (batch: 4 vs 8" "a changed option against an existing output"
            let jsonl = Path.Combine(tempFolder (), "c.jsonl")
            File.WriteAllText(jsonl, "{\"text\": \"fine\"}\n{\"txt\": \"no\"}\n")
            Expect.stringContains (message (options jsonl (out ()))) "line 2: no \"text\" field" "jsonl without text"
            let notHarvest = tempFolder ()
            File.WriteAllText(Path.Combine(notHarvest, "x"), "")
            Expect.stringContains (message (options corpus notHarvest)) "is not a harvest"
                "an unrelated existing folder"

        testCase ("an SAE trains from a harvested dataset: the trainer sees the dataset's activations, and asking for "
                  + "more than it holds is refused") <| fun () ->
            let _, single, _ = singleRun.Force()
            let dataset = ActivationDataset.Open single
            let hook = "blocks.0.hook_resid_post"
            let held = dataset.RowCount * 32L
            // Unshuffled order (no seed) is the dataset's own: the source's batches are the reader's, re-cut to the
            // trainer's size.
            let expected = [ for b in dataset.ActivationBatches(hook, 97) -> b ]
            use expectedAll = torch.cat(ResizeArray expected, 0L)
            for b in expected do b.Dispose()
            use source = new Lens.Sae.Training.DatasetActivations(dataset, hook, 64, 7, 256)
            Expect.equal source.DIn (int (expectedAll.shape.[1])) "d_in is the hook's width"
            Expect.equal source.Tokens held "rows × context activations"
            let seen = [ for _ in 1 .. 5 -> source.NextBatch 50 ]
            use seenAll = torch.cat(ResizeArray seen, 0L)
            for b in seen do b.Dispose()
            use seenSums = seenAll.sum(1L)
            use allSums = expectedAll.sum(1L)
            // Shuffled by the seed: every activation the trainer got is one of the dataset's (matched by its row sum).
            for v in seenSums.data<float32>().ToArray() do
                use value = torch.tensor v
                use equal = allSums.eq value
                use hit = equal.any()
                Expect.isTrue (hit.item<bool>()) "each activation is one the dataset holds"
            let o =
                Lens.Sae.Training.SaeTrainingOptions(Architecture = "topk", DSae = 32, K = 4.0,
                                                     TrainingTokens = 64L * 10L, TrainBatchSizeTokens = 64, Lr = 1e-3,
                                                     Progress = false)
            let meta = Lens.Sae.SaeMetadata(HookName = hook, ModelName = "demo-attn-only-2l")
            use result = Lens.Sae.Training.SaeTraining.Run(dataset, hook, o, meta)
            Expect.equal result.Samples 640L "10 steps of 64"
            let tooMany =
                Lens.Sae.Training.SaeTrainingOptions(Architecture = "topk", DSae = 32, K = 4.0,
                                                     TrainingTokens = (held / 64L + 1L) * 64L,
                                                     TrainBatchSizeTokens = 64)
            try Lens.Sae.Training.SaeTraining.Run(dataset, hook, tooMany, meta) |> ignore; failtest "not refused"
            with :? Lens.Sae.SaeException as e ->
                Expect.stringContains e.Message (sprintf "is more than the %d activations" held)
                    "names the dataset's size"
    ]
