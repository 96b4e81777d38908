/// Real published tokenizers (../shared/fixtures/tokenizers: Llama 3, Qwen3, Gemma 3, Mixtral) against the
/// ids, pieces and decoded text a reference implementation gives for ~27 strings each, with and without
/// special tokens; and `lens tokenize` as a process.
module Lens.Tests.CheckpointTokenizerTests

open System.IO
open System.Text.Json
open Expecto
open Lens.Tokenization
open Lens.Tests.TestSupport
open Lens.Tests.Processes

let private ints (e: JsonElement) = [ for x in e.EnumerateArray() -> x.GetInt32() ]
let private strs (e: JsonElement) = [ for x in e.EnumerateArray() -> x.GetString() ]

/// Every case of expected.json, each way: the mismatches found (empty when all match), and the count checked.
let private checkIn (name: string) (tokenizerDir: string) =
    let dir = requireShared ("fixtures/tokenizers/" + name)
    let tok = CheckpointTokenizer.FromFolder tokenizerDir
    use doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")))
    let mismatches = ResizeArray<string>()
    let mutable matched = Map.empty
    for case in doc.RootElement.GetProperty("cases").EnumerateArray() do
        let text = case.GetProperty("text").GetString()
        let id = case.GetProperty("id").GetString()
        for special in [ true; false ] do
            let e = case.GetProperty(if special then "add_special_tokens_true" else "add_special_tokens_false")
            let ids = tok.Encode(text, special) |> List.ofArray
            let results =
                [ "ids", ids = ints (e.GetProperty "ids"), sprintf "%A" ids
                  "tokens", (tok.Pieces(ints (e.GetProperty "ids")) |> List.ofArray) = strs (e.GetProperty "tokens"), ""
                  "decoded",
                      tok.Decode(ints (e.GetProperty "ids")) = e.GetProperty("decoded").GetString(),
                      tok.Decode(ints (e.GetProperty "ids"))
                  "decoded_skip_special",
                      tok.Decode(ints (e.GetProperty "ids"), skipSpecialTokens = true)
                          = e.GetProperty("decoded_skip_special").GetString(),
                      ""
                  "decoded_no_cleanup",
                      tok.Decode(ints (e.GetProperty "ids"), cleanUpTokenizationSpaces = false)
                          = e.GetProperty("decoded_no_cleanup").GetString(),
                      "" ]
            let ok = results |> List.forall (fun (_, good, _) -> good)
            let key = if special then "with special" else "without special"
            if ok then matched <- matched |> Map.change key (fun c -> Some(defaultArg c 0 + 1))
            for (what, good, got) in results do
                if not good then mismatches.Add(sprintf "%s %s (%s): %s differs %s" name id key what got)
    let total = doc.RootElement.GetProperty("cases").GetArrayLength()
    printfn "[tokenizer] %s: %d/%d strings match with special tokens, %d/%d without (ids, pieces, 3 decodings)"
        name (defaultArg (matched.TryFind "with special") 0) total (defaultArg (matched.TryFind "without special") 0)
            total
    mismatches |> List.ofSeq

let private check (name: string) = checkIn name (requireShared ("fixtures/tokenizers/" + name))

/// Protobuf wire format, just enough to write a SentencePiece ModelProto.
let private varint (out: ResizeArray<byte>) (value: int64) =
    let mutable v = uint64 value
    while v >= 0x80UL do
        out.Add(byte (v &&& 0x7FUL) ||| 0x80uy)
        v <- v >>> 7
    out.Add(byte v)

let private field (out: ResizeArray<byte>) (number: int) (wire: int) = varint out (int64 ((number <<< 3) ||| wire))

let private lengthDelimited (out: ResizeArray<byte>) (number: int) (bytes: byte[]) =
    field out number 2
    varint out (int64 bytes.Length)
    out.AddRange bytes

/// Mixtral's vocabulary written as the SentencePiece BPE model a Llama 2 / Mistral repository ships
/// (tokenizer.model): pieces in id order, &lt;unk&gt; UNKNOWN, &lt;s&gt; and &lt;/s&gt; CONTROL, byte pieces BYTE,
/// the rest NORMAL with scores in the order of the shipped tokenizer.json's merges (which Hugging Face
/// made from the real model by sorting on these scores: "▁▁", id 259, merges near the end), and pieces
/// no merge makes below all of them.
let private mixtralAsSentencePieceModel (path: string) =
    use doc =
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(requireShared "fixtures/tokenizers/mixtral",
                                                          "tokenizer.json")))
    let model = doc.RootElement.GetProperty("model")
    let vocab =
        [ for p in model.GetProperty("vocab").EnumerateObject() -> p.Value.GetInt32(), p.Name ] |> List.sortBy fst
    let firstRank = System.Collections.Generic.Dictionary<string, int>()
    model.GetProperty("merges").EnumerateArray() |> Seq.iteri (fun rank m ->
        let merged = m.GetString().Replace(" ", "")
        if not (firstRank.ContainsKey merged) then firstRank.[merged] <- rank)
    let score (id: int) (piece: string) =
        match firstRank.TryGetValue piece with
        | true, rank -> float32 -rank
        | _ -> float32 (-1000000 - id)
    let out = ResizeArray<byte>()
    for id, piece in vocab do
        let p = ResizeArray<byte>()
        lengthDelimited p 1 (System.Text.Encoding.UTF8.GetBytes piece)
        let kind = if id = 0 then 2 elif id <= 2 then 3 elif piece.StartsWith "<0x" && piece.Length = 6 then 6 else 1
        field p 2 5
        p.AddRange(System.BitConverter.GetBytes(if kind = 1 then score id piece else 0.0f))
        field p 3 0
        varint p (int64 kind)
        lengthDelimited out 1 (p.ToArray())
    let trainer = ResizeArray<byte>()
    for number, value in [ 3, 2L; 35, 1L; 40, 0L; 41, 1L; 42, 2L ] do
        field trainer number 0
        varint trainer value
    lengthDelimited out 2 (trainer.ToArray())
    let normalizer = ResizeArray<byte>()
    lengthDelimited normalizer 1 (System.Text.Encoding.UTF8.GetBytes "identity")
    field normalizer 3 0
    varint normalizer 1L
    lengthDelimited out 3 (normalizer.ToArray())
    File.WriteAllBytes(path, out.ToArray())


/// A small byte-level tokenizer.json (pieces for "a", "b", "ab", the space) with the given sections.
let private byteLevelJson (preTokenizer: string) (decoder: string) (postProcessor: string) =
    """{"version": "1.0", "added_tokens": [{"id": 4, "content": "<|end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
  "normalizer": null, "pre_tokenizer": PRE, "post_processor": POST, "decoder": DEC,
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": true,
    "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": [["a", "b"]]}}"""
        .Replace("PRE", preTokenizer).Replace("DEC", decoder).Replace("POST", postProcessor)

let private llama3Split =
    """{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{L}+| ?[^\\s\\p{L}]+|\\s+"}, "behavior": "BEHAVIOR", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}"""

let private byteLevelDecoder =
    """{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"""

let private folderWithJson (json: string) =
    let dir = Path.Combine(Path.GetTempPath(), "lens-ckpt-tok-" + System.Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore
    File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json)
    dir

let private fixtureTest (name: string) =
    testCase (name + (": every fixture string gives the expected ids and pieces, with and without special tokens, and "
                      + "decodes to the expected text")) <| fun () ->
        let mismatches = check name
        Expect.isEmpty (mismatches |> List.truncate 10) (sprintf "%d mismatches" mismatches.Length)

[<Tests>]
let tests =
    testList "checkpoint tokenizers" [
        fixtureTest "llama3"
        fixtureTest "qwen3"
        fixtureTest "gemma3"
        fixtureTest "mixtral"

        testCase ("mixtral as a SentencePiece tokenizer.model only (no tokenizer.json): converted as Hugging Face "
                  + "converts it, every fixture string matches") <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), "lens-spmodel-" + System.Guid.NewGuid().ToString("N"))
            Directory.CreateDirectory dir |> ignore
            try
                mixtralAsSentencePieceModel (Path.Combine(dir, "tokenizer.model"))
                File.Copy(Path.Combine(requireShared "fixtures/tokenizers/mixtral", "tokenizer_config.json"),
                          Path.Combine(dir, "tokenizer_config.json"))
                let mismatches = checkIn "mixtral" dir
                Expect.isEmpty (mismatches |> List.truncate 10) (sprintf "%d mismatches" mismatches.Length)
                // A unigram model (the default model_type) is refused by name.
                let bytes = File.ReadAllBytes(Path.Combine(dir, "tokenizer.model"))
                let unigram = ResizeArray<byte>()
                lengthDelimited unigram 1 (let p = ResizeArray<byte>() in lengthDelimited p 1 "a"B; p.ToArray())
                File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), unigram.ToArray())
                Expect.stringContains
                    (messageOf<TokenizerFileException> (fun () -> CheckpointTokenizer.FromFolder dir |> ignore))
                    "of type UNIGRAM" "model type"
                ignore bytes
            finally Directory.Delete(dir, true)

        testCase ("what cannot be reproduced exactly is refused by name: Split behaviours, decoders, post-processors, "
                  + "letters outside the BMP") <| fun () ->
            let ok =
                folderWithJson
                    (byteLevelJson (llama3Split.Replace("BEHAVIOR", "Isolated")) byteLevelDecoder
                        """{"type": "ByteLevel"}""")
            let tok = CheckpointTokenizer.FromFolder ok
            Expect.equal (tok.Encode("ab a<|end|>", false) |> List.ofArray) [ 2; 3; 0; 4 ]
                "ignore_merges, Split, added token"
            Expect.equal (tok.Pieces [ 2; 3; 4 ] |> List.ofArray) [ "ab"; "Ġ"; "<|end|>" ] "pieces"
            let astral = messageOf<System.ArgumentException> (fun () -> tok.Encode("a𝐀", false) |> ignore)
            Expect.stringContains astral "U+1D400" "names the character"
            let removed =
                folderWithJson (byteLevelJson (llama3Split.Replace("BEHAVIOR", "Removed")) byteLevelDecoder "null")
            Expect.stringContains
                (messageOf<TokenizerFileException> (fun () -> CheckpointTokenizer.FromFolder removed |> ignore))
                "behavior \"Removed\"" "Split behaviour"
            let wordPiece =
                folderWithJson
                    (byteLevelJson (llama3Split.Replace("BEHAVIOR", "Isolated"))
                        """{"type": "WordPiece", "prefix": "##"}""" "null")
            Expect.stringContains
                (messageOf<TokenizerFileException> (fun () -> CheckpointTokenizer.FromFolder wordPiece |> ignore))
                "decoder [WordPiece]" "decoder"
            let roberta =
                folderWithJson
                    (byteLevelJson (llama3Split.Replace("BEHAVIOR", "Isolated")) byteLevelDecoder
                        """{"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}""")
            let r = CheckpointTokenizer.FromFolder roberta
            Expect.equal (r.Encode("ab", false) |> List.ofArray) [ 2 ] "without special tokens it still tokenizes"
            Expect.stringContains
                (messageOf<System.InvalidOperationException> (fun () -> r.Encode("ab", true) |> ignore))
                "post_processor \"RobertaProcessing\"" "post-processor"
            for d in [ ok; removed; wordPiece; roberta ] do Directory.Delete(d, true)

        testCase "lens tokenize prints ids and pieces as JSON, with and without special tokens" <| fun () ->
            let dir = requireShared "fixtures/tokenizers/mixtral"
            let withSpecial = lens [ "tokenize"; dir; "--text"; "Hello world" ]
            Expect.equal withSpecial.ExitCode 0 withSpecial.Stderr
            use a = JsonDocument.Parse withSpecial.Stdout
            Expect.equal (ints (a.RootElement.GetProperty "ids")) [ 1; 22557; 1526 ] "BOS then the text"
            Expect.equal (strs (a.RootElement.GetProperty "tokens")) [ "<s>"; "▁Hello"; "▁world" ] "pieces"
            let plain = lens [ "tokenize"; dir; "--text"; "Hello world"; "--no-special" ]
            use b = JsonDocument.Parse plain.Stdout
            Expect.equal (ints (b.RootElement.GetProperty "ids")) [ 22557; 1526 ] "--no-special adds no BOS"
            let llama3 =
                lens [ "tokenize"; Path.Combine(requireShared "fixtures/tokenizers/llama3", "tokenizer.json"); "--text";
                       "Hello world" ]
            use c = JsonDocument.Parse llama3.Stdout
            Expect.equal (strs (c.RootElement.GetProperty "tokens")) [ "Hello"; "Ġworld" ]
                "a tokenizer.json path names its folder"

        testCase "lens tokenize names a path that is neither a folder nor a downloaded model" <| fun () ->
            let r = lens [ "tokenize"; "no-such-model-anywhere"; "--text"; "x" ]
            Expect.equal r.ExitCode 2 r.Stderr
            Expect.stringContains r.Stderr "'no-such-model-anywhere' is neither a folder nor a downloaded model"
                "message"
    ]
