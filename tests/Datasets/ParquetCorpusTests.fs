/// Parquet corpora for lens harvest (issue 17): files written here with Parquet.Net, a pre-tokenized list column and a
/// text column, harvest to the same Arrow files, byte for byte, as the same tokens through the text route; bad
/// Parquet input is refused naming the file, the column and the row.
module Lens.Tests.ParquetCorpusTests

open System
open System.Collections.Generic
open System.IO
open System.Threading
open Expecto
open Parquet
open Parquet.Schema
open Lens
open Lens.Datasets
open Lens.Tests.TestSupport

/// Every folder these tests write lives under one root, removed when the test process exits.
let private scratchRoot = scratchFolder "lens-parquet-tests"

let private tempFolder () = freshFolderIn scratchRoot "parquet"

/// A real English corpus (the repository's documentation), one document per line, as the text route reads it.
let private corpusText =
    lazy (
        let text =
            [ Path.Combine(repoRoot, "README.md") ]
                @ (Directory.GetFiles(Path.Combine(repoRoot, "docs"), "*.md") |> Array.sort |> List.ofArray)
            |> List.map File.ReadAllText |> String.concat "\n"
        let file = Path.Combine(tempFolder (), "corpus.txt")
        File.WriteAllText(file, text.Substring(0, min 40000 text.Length))
        file)

let private demo = lazy (ModelLoader.Load "demo-attn-only-2l")
let private hooks = [| "blocks.*.hook_resid_post"; "blocks.0.attn.hook_z" |]
let private options corpus out = HarvestOptions(corpus, hooks, 32, out, Batch = 4, MaxFileBytes = 100_000L)

let private harvest corpus =
    let out = Path.Combine(tempFolder (), "out")
    let result = ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l", options corpus out)
    out, result

let private textRun = lazy (harvest (corpusText.Force()))

let private dataFiles (dir: string) =
    Directory.GetFiles(dir, "data-*.arrow") |> Array.sort
        |> Array.map (fun f -> Path.GetFileName f, File.ReadAllBytes f)

let private expectSameData (actual: string) (expected: string) =
    let a, e = dataFiles actual, dataFiles expected
    Expect.sequenceEqual (Array.map fst a) (Array.map fst e) "the same data files"
    for (name, bytes), (_, expectedBytes) in Array.zip a e do
        Expect.isTrue (bytes.AsSpan().SequenceEqual(ReadOnlySpan expectedBytes)) (sprintf "%s: identical bytes" name)

let private writeParquet (path: string) (fields: Field list) (groups: (ParquetRowGroupWriter -> unit) list) =
    let schema = ParquetSchema(Array.ofList fields)
    use stream = File.Create path
    let writer = ParquetWriter.CreateAsync(schema, stream).Result
    for write in groups do
        use group = writer.CreateRowGroup()
        write group
    writer.DisposeAsync().AsTask().Wait()

/// Writes one row group of lists: repetition level 0 opens a row, every element is defined.
let private writeLists<'T when 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType> (list: ListField)
    (rows: 'T[][]) (group: ParquetRowGroupWriter) =
    let item = list.Item :?> DataField
    let values = Array.concat rows
    let reps = rows |> Array.collect (fun r -> Array.init r.Length (fun i -> if i = 0 then 0 else 1))
    let defs = Array.create values.Length item.MaxDefinitionLevel
    group.WriteAllPartsAsync(item, ReadOnlyMemory values, Nullable(ReadOnlyMemory defs), Nullable(ReadOnlyMemory reps),
                             CancellationToken.None).Wait()

let private writeStrings (field: DataField) (values: string[]) (group: ParquetRowGroupWriter) =
    group.WriteAsync(field, (values :> IReadOnlyCollection<string>), Nullable()).Wait()

let private tokenRowsOf (dataset: string) =
    [| for batch in ActivationDataset.Open(dataset).RowBatches("token_ids", 16) do
         use batch = batch
         let ids = batch.data<int64>().ToArray()
         let n = int batch.shape.[1]
         yield! Array.chunkBySize n ids |]

let private refusal corpus =
    let out = Path.Combine(tempFolder (), "x")
    let harvest () = ActivationHarvest.Run(demo.Force(), "demo-attn-only-2l", options corpus out) |> ignore
    messageOf<HarvestException> harvest

[<Tests>]
let tests =
    testSequenced <| testList "parquet corpora" [
        testCase ("a pre-tokenized Parquet corpus (input_ids: list<int32>, row groups of 7 rows) harvests to the text "
                  + "route's data files, byte for byte") <| fun () ->
            let textOut, textResult = textRun.Force()
            let rows = tokenRowsOf textOut |> Array.map (Array.map int)
            Expect.equal (int64 rows.Length) textResult.Rows "every packed row"
            let file = Path.Combine(tempFolder (), "tokens.parquet")
            let list = ListField("input_ids", DataField<int>("element"))
            writeParquet file [ list ] [ for group in Array.chunkBySize 7 rows -> writeLists list group ]
            let out, result = harvest file
            Expect.equal result.Rows textResult.Rows "the same rows"
            Expect.isGreaterThan (dataFiles out).Length 3 "several data files"
            expectSameData out textOut

        testCase ("a Parquet text corpus (a folder of two files, row groups of 150 documents) is packed as the text "
                  + "file is, byte for byte") <| fun () ->
            let textOut, textResult = textRun.Force()
            let documents = CorpusDocuments.Read(corpusText.Force()) |> Array.ofSeq
            Expect.isGreaterThan documents.Length 300 "documents span several row groups"
            Expect.isTrue (documents |> Array.exists String.IsNullOrEmpty) "blank lines are empty documents, not nulls"
            let folder = tempFolder ()
            let half = documents.Length / 2
            for name, part in [ "part-0.parquet", documents.[.. half - 1]; "part-1.parquet", documents.[half ..] ] do
                let id = DataField<int64>("id")
                let text = DataField<string>("text")
                writeParquet (Path.Combine(folder, name)) [ id; text ]
                    [ for group in Array.chunkBySize 150 part ->
                        fun g ->
                            g.WriteAsync(id, ReadOnlyMemory(Array.init group.Length int64), Nullable(), null,
                                         CancellationToken.None).Wait()
                            writeStrings text group g ]
            let out, result = harvest folder
            Expect.equal result.Rows textResult.Rows "the same rows"
            expectSameData out textOut

        testCase "the older two-level list (a repeated int64 token_ids) and a required text column read the same"
        <| fun () ->
            let textOut, _ = textRun.Force()
            let rows = tokenRowsOf textOut
            let file = Path.Combine(tempFolder (), "repeated.parquet")
            let repeated = DataField<int64[]>("token_ids")
            writeParquet file [ repeated ]
                [ for group in Array.chunkBySize 5 rows ->
                    fun g ->
                        let reps =
                            group |> Array.collect (fun r -> Array.init r.Length (fun i -> if i = 0 then 0 else 1))
                        g.WriteAsync(repeated, ReadOnlyMemory(Array.concat group), Nullable(ReadOnlyMemory reps), null,
                                     CancellationToken.None).Wait() ]
            expectSameData (fst (harvest file)) textOut
            let required = DataField<string>("text", false)
            let textFile = Path.Combine(tempFolder (), "required.parquet")
            writeParquet textFile [ required ]
                [ writeStrings required (CorpusDocuments.Read(corpusText.Force()) |> Array.ofSeq) ]
            expectSameData (fst (harvest textFile)) textOut

        testCase ("row groups are read one at a time: the rows before a damaged last row group come out before it is "
                  + "read") <| fun () ->
            let file = Path.Combine(tempFolder (), "streamed.parquet")
            let list = ListField("tokens", DataField<int64>("element"))
            writeParquet file [ list ]
                [ for g in 0L .. 2L -> writeLists list [| Array.create 32 (10L + g); Array.create 32 (20L + g) |] ]
            let offset =
                let reader = ParquetReader.CreateAsync(file).Result
                let offset = reader.Metadata.RowGroups.[2].Columns.[0].MetaData.DataPageOffset
                reader.DisposeAsync().AsTask().Wait()
                int offset
            let bytes = File.ReadAllBytes file
            Array.fill bytes offset 24 0uy
            File.WriteAllBytes(file, bytes)
            use rows = (HarvestCorpus.Open file).Rows(null, 32).GetEnumerator()
            for expected in [ 10L; 20L; 11L; 21L ] do
                Expect.isTrue (rows.MoveNext()) "a row of the intact groups"
                Expect.equal rows.Current.[0] expected "in order"
            let e = Expect.throwsC (fun () -> rows.MoveNext() |> ignore) id
            Expect.stringContains e.Message (sprintf "--corpus '%s': row group 2 " file)
                "the damaged group is met only when its rows are due"

        testCase "bad Parquet input is refused naming the file, the column and the row" <| fun () ->
            let folder = tempFolder ()
            let path name = Path.Combine(folder, name)
            Expect.stringContains (refusal "/no/such/corpus.parquet") "--corpus '/no/such/corpus.parquet': no such file"
                "missing file"
            File.WriteAllText(path "text.parquet", "not parquet at all")
            Expect.stringContains (refusal (path "text.parquet"))
                (sprintf "--corpus '%s': not a readable Parquet file" (path "text.parquet")) "not Parquet"
            let content = DataField<string>("content")
            let n = DataField<int64>("n")
            writeParquet (path "neither.parquet") [ content; n ]
                [ fun g ->
                    writeStrings content [| "a" |] g
                    g.WriteAsync(n, ReadOnlyMemory [| 1L |], Nullable(), null, CancellationToken.None).Wait() ]
            Expect.stringContains (refusal (path "neither.parquet"))
                "no 'tokens', 'input_ids' or 'token_ids' list column and no 'text' column (columns: content, n)"
                "no usable column"
            let doubles = ListField("tokens", DataField<double>("element"))
            writeParquet (path "doubles.parquet") [ doubles ] [ writeLists doubles [| Array.create 32 1.0 |] ]
            Expect.stringContains (refusal (path "doubles.parquet"))
                "column 'tokens' holds Double, not integer token ids" "float ids"
            let scalar = DataField<int64>("token_ids")
            writeParquet (path "scalar.parquet") [ scalar ]
                [ fun g -> g.WriteAsync(scalar, ReadOnlyMemory [| 1L; 2L |], Nullable(), null,
                                        CancellationToken.None).Wait() ]
            Expect.stringContains (refusal (path "scalar.parquet"))
                "column 'token_ids' is a single Int64 per row, not a list of token ids" "one id per row"
            let ragged = ListField("tokens", DataField<int64>("element"))
            writeParquet (path "ragged.parquet") [ ragged ]
                [ writeLists ragged [| Array.create 32 5L |]; writeLists ragged
                    [| Array.create 32 5L; Array.create 31 5L |] ]
            Expect.stringContains (refusal (path "ragged.parquet"))
                (sprintf "--corpus '%s': row 2 of column 'tokens' holds 31 tokens but --context is 32"
                    (path "ragged.parquet")) "ragged rows, counted across row groups"
            let text = DataField<string>("text")
            writeParquet (path "nulls.parquet") [ text ] [ writeStrings text [| "fine"; null |] ]
            Expect.stringContains (refusal (path "nulls.parquet")) "row 1 of column 'text' is null" "a null document"
            // A damaged data page (its header zeroed; the footer intact): refused naming the row group, never a crash
            // or fewer rows.
            let damaged = path "damaged.parquet"
            let list = ListField("tokens", DataField<int64>("element"))
            writeParquet damaged [ list ]
                [ writeLists list [| Array.create 32 5L; Array.create 32 6L |]; writeLists list
                    [| Array.create 32 7L |] ]
            let bytes = File.ReadAllBytes damaged
            Array.fill bytes 4 24 0uy
            File.WriteAllBytes(damaged, bytes)
            Expect.stringContains (refusal damaged) (sprintf "--corpus '%s': row group 0 " damaged)
                "a damaged row group"
            let mixed = tempFolder ()
            File.Copy(path "nulls.parquet", Path.Combine(mixed, "a.parquet"))
            File.WriteAllText(Path.Combine(mixed, "b.txt"), "text")
            Expect.stringContains (refusal mixed) "holds both .txt and .parquet files" "a folder of two kinds"
            let kinds = tempFolder ()
            File.Copy(path "nulls.parquet", Path.Combine(kinds, "a.parquet"))
            File.Copy(path "ragged.parquet", Path.Combine(kinds, "b.parquet"))
            Expect.stringContains (refusal kinds) "every Parquet file of a corpus needs the same column"
                "files of two kinds"
    ]
