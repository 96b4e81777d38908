/// The experiment language on activation datasets (issue 17, item 2): `input dataset "DIR" rows A..B` takes a
/// `lens harvest` dataset's token_ids rows as the batch, and `cache load "DIR"` compares this run with the stored
/// activations of those rows, through the language's text on the demo model.
module Lens.Tests.DatasetInputDslTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.Datasets
open Lens.Dsl
open Lens.Dsl.Runtime
open Lens.Tests.TestSupport

let private scratch = scratchFolder "lens-dataset-input-tests"

/// A harvest of the repository's README and docs (a real English text) on the demo model: 32-token rows, batches
/// of 4 rows, data files of about 12 rows each so that a few rows touch one file and not the others.
let private harvested =
    lazy (
        let corpus = Path.Combine(scratch.Force(), "corpus.txt")
        let text =
            [ Path.Combine(repoRoot, "README.md") ]
                @ (Directory.GetFiles(Path.Combine(repoRoot, "docs"), "*.md") |> Array.sort |> List.ofArray)
            |> List.map File.ReadAllText |> String.concat "\n"
        File.WriteAllText(corpus, text.Substring(0, min 12000 text.Length))
        let out = Path.Combine(scratch.Force(), "acts")
        let options (out: string) (shard: int) (shards: int) =
            HarvestOptions(corpus, [| "blocks.*.hook_resid_post"; "blocks.0.attn.hook_z" |], 32, out, Batch = 4,
                           MaxFileBytes = 100_000L, ShardIndex = shard, ShardCount = shards)
        use model = ModelLoader.Load "demo-attn-only-2l"
        ActivationHarvest.Run(model, "demo-attn-only-2l", options out 0 1) |> ignore
        // The same harvest in three shards, read as one dataset from the folder of shard folders.
        for i in 0 .. 2 do
            ActivationHarvest.Run(model, "demo-attn-only-2l", options (Path.Combine(scratch.Force(), "shards")) i 3)
                |> ignore
        out)

let private environment (text: string) =
    new ExperimentEnvironment(FileName = "dataset.lens", SourceText = text, ReadDirectory = scratch.Force())

let private run (body: string) =
    harvested.Force() |> ignore
    let text = "model demo-attn-only-2l\n" + body
    use env = environment text
    let state = Pipeline.Parse(text, "dataset.lens").Execute env
    state, env.FilesRead |> Seq.map (fun f -> f.Path) |> List.ofSeq

let private check (body: string) =
    harvested.Force() |> ignore
    let text = "model demo-attn-only-2l\n" + body
    use env = environment text
    Pipeline.Parse(text, "dataset.lens").Check(ExperimentState.Start env) |> Seq.map string |> List.ofSeq

let private cacheTable (state: ExperimentState) =
    match (state.Results |> Seq.filter (fun r -> r.Text.StartsWith "cache load") |> Seq.last).Value with
    | :? TableValue as t -> t
    | other -> failtestf "cache load gave %s" other.Kind

let private storedTokens (first: int64) (count: int) =
    let data = ActivationDataset.Open(harvested.Force())
    let struct (read, _) = data.ReadRows("token_ids", first, count)
    use rows = read
    [ for r in 0L .. rows.shape.[0] - 1L -> [| for p in 0L .. rows.shape.[1] - 1L -> rows.[r, p].item<int64>() |] ]

[<Tests>]
let tests =
    testSequenced <| testList "dataset input dsl" [
        testCase "input dataset rows A..B parses, prints back and refuses an empty range" <| fun () ->
            let source (text: string) =
                match Pipeline.Parse(text, "p.lens").ToScript().Statements |> Seq.exactlyOne with
                | :? InputStatement as s -> s.Source
                | other -> failtestf "%s parsed as %O" text other
            Expect.equal (source "input dataset \"acts\" rows 4..8") (DatasetInput("acts", 4L, 4) :> InputSource)
                "rows 4..8 are rows 4 to 7"
            Expect.equal (Printer.Print(DatasetInput("acts", 4L, 4))) "dataset acts rows 4..8"
                "printed back (a plain path needs no quotes)"
            Expect.equal (source "input dataset \"acts\" rows 5") (DatasetInput("acts", 5L, 1) :> InputSource)
                "rows 5 is row 5 alone"
            Expect.equal (Printer.Print(DatasetInput("acts", 5L, 1))) "dataset acts rows 5" "one row printed back"
            try
                Pipeline.Parse("input dataset \"acts\" rows 8..4", "p.lens") |> ignore
                failtest "rows 8..4 parsed"
            with :? DslParseException as e ->
                Expect.stringContains e.Message "the row range 8..4 is empty" "names the range"

        testCase "the input is the dataset's token_ids rows, and cache load finds this run's activations bit for bit"
        <| fun () ->
            // Rows 4..8 are one of the harvest's batches (batch 4); rows 5..7 and row 9 cut across them.
            for rows, first, count in [ "4..8", 4L, 4; "5..7", 5L, 2; "9", 9L, 1 ] do
                let state, filesRead =
                    run
                        (sprintf
                            "input dataset \"acts\" rows %s\ncache load \"acts\"\nexpect cache max == 0 within 0\n\
                             expect cache blocks.1.hook_resid_post == 0 within 0" rows)
                Expect.equal (state.Input.Ids |> List.ofArray) (storedTokens first count)
                    (sprintf "rows %s: the tokens are the dataset's token_ids" rows)
                let table = cacheTable state
                Expect.equal (table.Rows |> Array.map (fun r -> r.[0] :?> string) |> List.ofArray)
                    [ "blocks.0.attn.hook_z"; "blocks.0.hook_resid_post"; "blocks.1.hook_resid_post" ]
                        "every hook column of the dataset"
                for r in table.Rows do
                    Expect.equal (r.[2] :?> double) 0.0 (sprintf "rows %s, %O: max |difference| 0" rows r.[0])
                let expectations =
                    state.Results
                        |> Seq.choose (fun r -> match r.Value with :? ExpectationValue as e -> Some e | _ -> None)
                            |> List.ofSeq
                Expect.equal expectations.Length 2 "two expectations"
                Expect.all expectations (fun e -> e.Passed) "expect cache ... == 0 passes"
                let data = ActivationDataset.Open(harvested.Force())
                let struct (read, touched) = data.ReadRows("token_ids", first, count)
                read.Dispose()
                let dataFiles = filesRead |> List.filter (fun p -> p.EndsWith ".arrow")
                Expect.equal (List.sort dataFiles) (touched |> Seq.map Path.GetFullPath |> Seq.sort |> List.ofSeq)
                    (sprintf "rows %s: only the data files holding them are hashed" rows)
                Expect.isLessThan dataFiles.Length data.Files.Count "not every data file"

        testCase "rows across two shards of the folder of shard folders are the single run's rows, bit for bit"
        <| fun () ->
            harvested.Force() |> ignore
            let boundary = ActivationDataset.Open(Path.Combine(scratch.Force(), "shards", "shard-0-of-3")).RowCount
            let first = boundary - 2L
            let state, _ =
                run
                    (sprintf "input dataset shards rows %d..%d\ncache load shards\nexpect cache max == 0 within 0" first
                        (first + 4L))
            Expect.equal (state.Input.Ids |> List.ofArray) (storedTokens first 4)
                "the shards' tokens are the single run's"
            let table = cacheTable state
            Expect.equal table.Rows.Length 3 "three hook columns"
            for r in table.Rows do Expect.equal (r.[2] :?> double) 0.0 (sprintf "%O: max |difference| 0" r.[0])
            // The single run's folder holds the same tokens in those rows, so it compares too.
            let state, _ = run (sprintf "input dataset shards rows %d..%d\ncache load acts" first (first + 4L))
            for r in (cacheTable state).Rows do
                Expect.equal (r.[2] :?> double) 0.0 (sprintf "%O against the single run: 0" r.[0])

        testCase "a difference is reported: the dataset against an ablated run" <| fun () ->
            let state, _ = run "input dataset \"acts\" rows 4..8\nablate L0H0 {\n  cache load \"acts\"\n}"
            let table = cacheTable state
            let resid1 = table.Rows |> Array.find (fun r -> r.[0] :?> string = "blocks.1.hook_resid_post")
            Expect.isGreaterThan (resid1.[2] :?> double) 1e-3
                "ablating a head moves the residual away from the stored one"

        testCase ("lens check refuses rows out of range, a folder that is not a dataset, and a cache load of a dataset "
                  + "with another input") <| fun () ->
            harvested.Force() |> ignore
            let rows = ActivationDataset.Open(harvested.Force()).RowCount
            let errors = check (sprintf "input dataset \"acts\" rows %d..%d" (rows - 1L) (rows + 1L))
            Expect.equal errors.Length 1 "one error"
            Expect.stringContains errors.[0] (sprintf "has %d rows" rows) "names the row count"
            Expect.stringContains errors.[0] "dataset.lens:2:27:" "located on the rows"
            Expect.stringContains errors.[0] (sprintf "rows %d..%d are out of range" (rows - 1L) (rows + 1L))
                "names the rows"
            Directory.CreateDirectory(Path.Combine(scratch.Force(), "not-a-dataset")) |> ignore
            let errors = check "input dataset \"not-a-dataset\" rows 0"
            Expect.equal errors.Length 1 "one error"
            Expect.stringContains errors.[0] "neither a dataset" "says what the folder is not"
            let errors = check "input dataset \"missing\" rows 0"
            Expect.stringContains errors.[0] "dataset folder 'missing' not found" "a missing folder"
            let errors = check "input tokens [[50256, 11, 12]]\ncache load \"acts\""
            Expect.equal errors.Length 1 "one error"
            Expect.stringContains errors.[0] "dataset.lens:3:" "located on the cache load"
            Expect.stringContains errors.[0] "the input must be rows of it" "says why"
            let errors =
                check ("input dataset \"acts\" rows 0..2\nlet other = input dataset \"acts\" rows 2..4\ninput other\n"
                       + "cache load \"acts\"")
            Expect.isEmpty errors "a let-bound dataset input is rows of the dataset too"
    ]
