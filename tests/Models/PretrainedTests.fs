/// Model names and sources: known names and aliases, ModelLoader's pretrained sources, tokenizers and
/// their BOS conventions, downloads through the hub client, and `lens download` / `lens models` run
/// as processes against a hub-like server on 127.0.0.1.
module Lens.Tests.PretrainedTests

open System
open System.IO
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open TorchSharp
open Lens
open Lens.Hub
open Lens.IO
open Lens.Pretrained
open Lens.Tokenization
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.HubTests
open Lens.Tests.Processes
open Lens.Tests.WeightProcessingTests
open Lens.Tests.ArchitectureTests

// ---- a tiny byte-level tokenizer (GPT-2 style: 256 byte pieces, no merges, <|endoftext|> = 256) -------

let byteLevelTokenizerJson () =
    let vocab = JsonObject()
    for b in 0 .. 255 do vocab.[ByteLevelAlphabet.FromBytes(ReadOnlySpan<byte>([| byte b |]))] <- JsonValue.Create b
    vocab.["<|endoftext|>"] <- JsonValue.Create 256
    let root = JsonObject()
    root.["version"] <- JsonValue.Create "1.0"
    root.["added_tokens"] <-
        JsonNode.Parse ("""[{"id": 256, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": """
                        + """false, "normalized": false, "special": true}]""")
    root.["normalizer"] <- null
    root.["pre_tokenizer"] <-
        JsonNode.Parse """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"""
    root.["post_processor"] <- null
    root.["decoder"] <-
        JsonNode.Parse """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"""
    let model = JsonObject()
    model.["type"] <- JsonValue.Create "BPE"
    model.["vocab"] <- vocab
    model.["merges"] <- JsonArray()
    root.["model"] <- model
    root.ToJsonString()

/// A checkpoint folder with the byte-level tokenizer and the given tokenizer_config.json.
let writeWithTokenizer (dir: string) (config: string) (weights: HfWeights) (tokenizerConfig: string) =
    writeHubFolder dir config weights.Tensors
    File.WriteAllText(Path.Combine(dir, "tokenizer.json"), byteLevelTokenizerJson ())
    File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig)

// ---- the hf-gpt2 oracle checkpoint served as hub repository "gpt2" -----------------------------------

let hfGpt2Files () =
    let dir = fixture [ "tl-oracle"; "hf-gpt2" ]
    [ { Name = "config.json"; Bytes = File.ReadAllBytes(Path.Combine(dir, "config.json")); Lfs = false }
      { Name = "model.safetensors"; Bytes = File.ReadAllBytes(Path.Combine(dir, "model.safetensors")); Lfs = true }
      { Name = "README.md"; Bytes = Encoding.UTF8.GetBytes "# test copy of the hf-gpt2 oracle"; Lfs = false } ]

let gpt2Commit = "1111111111111111111111111111111111111111"

let hubOptions (cache: TempCache) (hub: FakeHub) =
    HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Progress = null, StallTimeout = TimeSpan.FromSeconds 10.0)

let cliEnv (cache: TempCache) (endpoint: string) =
    [ "HF_ENDPOINT", endpoint; "HF_HUB_CACHE", cache.Dir; "HF_HOME", cache.Dir; "HF_HUB_OFFLINE", "0"; "HF_TOKEN", "" ]

let hfGpt2Expected () = Oracle("hf-gpt2").Expected "expected.safetensors"

[<Tests>]
let tests =
    testList "pretrained models" [
        testCase "known names and aliases resolve to TransformerLens's official names / hub ids, case-insensitively"
        <| fun () ->
            let cases =
                [ "gpt2-small", "gpt2"; "GPT2-Small", "gpt2"; "gpt2", "gpt2"; "gpt2-medium", "gpt2-medium";
                  "gpt2-large", "gpt2-large"
                  "gpt2-xl", "gpt2-xl"; "distil-gpt2", "distilgpt2"; "gpt2-xs", "distilgpt2"
                  "pythia-70m", "EleutherAI/pythia-70m"; "pythia", "EleutherAI/pythia-70m"; "pythia-19m",
                      "EleutherAI/pythia-70m"
                  "pythia-160m", "EleutherAI/pythia-160m"; "pythia-410m", "EleutherAI/pythia-410m"; "pythia-1b",
                      "EleutherAI/pythia-1b"
                  "pythia-1.4b", "EleutherAI/pythia-1.4b"; "EleutherAI/pythia-1.3b", "EleutherAI/pythia-1.4b"
                  "gpt-neo-125M", "EleutherAI/gpt-neo-125M"; "neo", "EleutherAI/gpt-neo-125M"
                  "tiny-stories-1M", "roneneldan/TinyStories-1M"; "tiny-stories-3M", "roneneldan/TinyStories-3M"
                  "tiny-stories-8M", "roneneldan/TinyStories-8M"; "tiny-stories-28M", "roneneldan/TinyStories-28M"
                  "tiny-stories-33M", "roneneldan/TinyStories-33M"
                  "tinyllama", "TinyLlama/TinyLlama-1.1B-Chat-v1.0"; "meta-llama/Llama-3.2-1B",
                      "meta-llama/Llama-3.2-1B"
                  "qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B"; "Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B"
                  "mistral-7b", "mistralai/Mistral-7B-v0.1" ]
            for alias, official in cases do
                Expect.equal (OfficialModels.GetOfficialName alias) official alias
            Expect.isNull (box (OfficialModels.TryGet "gpt-5")) "unknown names are not guessed"
            let message = messageOf<ArgumentException> (fun () -> OfficialModels.GetOfficialName "gpt2-smal" |> ignore)
            Expect.stringContains message "did you mean 'gpt2-small'" "suggests the nearest name"

        testCase ("HfConfig's getters: a value of another kind is refused naming the file, the key and the kind; "
                  + "absent keys fall back") <| fun () ->
            let hf = HfConfig.Parse("""{"hidden_size": "64", "rms_norm_eps": true, "tie_word_embeddings": 1, "hidden_act": 3,
                                        "vocab_size": 53, "rope_theta": 10000, "use_cache": false, "model_type": "llama", "head_dim": null}""", "x/config.json")
            let refusal (read: unit -> unit) = messageOf<CheckpointException> read
            Expect.equal (refusal (fun () -> hf.Int("hidden_size") |> ignore))
                "x/config.json: 'hidden_size' should be an integer, got \"64\"" "int"
            Expect.equal (refusal (fun () -> hf.Double("rms_norm_eps") |> ignore))
                "x/config.json: 'rms_norm_eps' should be a number, got true" "double"
            Expect.equal (refusal (fun () -> hf.Bool("tie_word_embeddings", false) |> ignore))
                "x/config.json: 'tie_word_embeddings' should be true or false, got 1" "bool"
            Expect.equal (refusal (fun () -> hf.String("hidden_act") |> ignore))
                "x/config.json: 'hidden_act' should be a string, got 3" "string"
            Expect.equal (refusal (fun () -> hf.Int("num_hidden_layers") |> ignore))
                "x/config.json: needs 'num_hidden_layers'" "a missing key without a default"
            Expect.equal
                (hf.Int("vocab_size"), hf.Double("rope_theta"), hf.Bool("use_cache", true), hf.String("model_type"))
                (53, 10000.0, false, "llama") "present values"
            Expect.equal
                (hf.Int("head_dim", 8), hf.Double("absent", 0.5), hf.Bool("absent", true), hf.String("absent", "gelu"))
                (8, 0.5, true, "gelu") "null and absent keys give the default"
            Expect.equal (hf.IntOrNull("head_dim"), hf.DoubleOrNull("absent"), hf.StringOrNull("absent"))
                (Nullable(), Nullable(), null) "or null"

        testCase "ModelLoader: hub-layout and native folders resolve; unknown names list the sources tried" <| fun () ->
            let dir = tempDir "loader"
            let native = tempDir "native"
            try
                writeHubFolder dir llamaSpec.Config (llamaWeights llamaSpec).Tensors
                use model = ModelLoader.Load(dir, LoadOptions(ProcessWeights = false))
                Expect.equal model.Config.OriginalArchitecture "LlamaForCausalLM" "a hub-layout folder is converted"
                model.Save native
                use again = ModelLoader.Load(native)
                use tokens = randomTokens ()
                use a = model.Forward(tokens)
                use b = again.Forward(tokens)
                expectClose 0.0 "a saved (TransformerLens-native) folder still loads as itself" b a
                let message =
                    messageOf<CheckpointException> (fun () -> ModelLoader.Load("surely-not-a-model") |> ignore)
                for source in [ "known model name"; "hub id"; "hub-layout"; "llama2.c"; "TransformerLens-native" ] do
                    Expect.stringContains message source "the error names every source"
            finally
                Directory.Delete(dir, true)
                Directory.Delete(native, true)

        testCase ("tokenizers come from the checkpoint's own files with each family's BOS convention (NeoX: "
                  + "<|endoftext|> prepended; Qwen2: none)") <| fun () ->
            let neox = tempDir "tok-neox"
            let qwen = tempDir "tok-qwen"
            try
                writeWithTokenizer neox (neoxConfig.Replace("\"vocab_size\": 53", "\"vocab_size\": 257"))
                    (neoxWeightsWith 257L)
                    ("""{"add_bos_token": false, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", """
                     + """"unk_token": "<|endoftext|>"}""")
                use model = HookedTransformer.FromPretrained(neox)
                Expect.isNotNull model.Tokenizer "tokenizer attached"
                use tokens = model.ToTokens("hi")
                Expect.sequenceEqual (tokens.data<int64>().ToArray()) [| 256L; int64 'h'; int64 'i' |]
                    "BOS <|endoftext|> then the bytes"
                Expect.equal (model.ToStrTokens("hi")) [| "<|endoftext|>"; "h"; "i" |] "to_str_tokens"
                Expect.equal model.Config.TokenizerPrependsBos (Nullable false) "tokenizer_prepends_bos recorded"
                use logits = model.Forward("hi")
                Expect.sequenceEqual logits.shape [| 1L; 3L; 257L |] "text goes through the model"

                writeWithTokenizer qwen (qwen2Spec.Config.Replace("\"vocab_size\": 53", "\"vocab_size\": 257"))
                    (llamaWeightsWith 257L qwen2Spec)
                    ("""{"add_bos_token": false, "bos_token": null, "eos_token": "<|endoftext|>", "pad_token": """
                     + """"<|endoftext|>"}""")
                use qwenModel = HookedTransformer.FromPretrained(qwen)
                Expect.isFalse qwenModel.Config.DefaultPrependBos "Qwen2: default_prepend_bos false"
                use qwenTokens = qwenModel.ToTokens("hi")
                Expect.sequenceEqual (qwenTokens.data<int64>().ToArray()) [| int64 'h'; int64 'i' |] "no BOS by default"
                Expect.equal qwenModel.Tokenizer.BosTokenId (Nullable 256)
                    "BOS falls back to EOS, as TransformerLens sets it"
            finally
                Directory.Delete(neox, true)
                Directory.Delete(qwen, true)

        testCase ("downloads through the hub client: a known name fetches config + safetensors into the cache, loads, "
                  + "and later loads offline") <| fun () ->
            use cache = new TempCache()
            let folder =
                use hub = new FakeHub("gpt2", gpt2Commit, hfGpt2Files ())
                let folder = PretrainedDownloads.Fetch("gpt2", hubOptions cache hub)
                Expect.isTrue (File.Exists(Path.Combine(folder, "model.safetensors"))) "weights downloaded"
                Expect.isFalse (File.Exists(Path.Combine(folder, "README.md"))) "only the files a model needs"
                folder
            // The hub is gone now: the cached snapshot is used without any request.
            let offline =
                PretrainedDownloads.Fetch("gpt2",
                                          HubOptions(CacheDir = cache.Dir, Endpoint = "http://127.0.0.1:9",
                                                     Progress = null))
            Expect.equal offline folder "the cached snapshot"
            let expected = hfGpt2Expected ()
            use model = HubLayoutLoader.Load(folder, LoadOptions(ProcessWeights = false), "gpt2")
            Expect.equal model.Config.ModelName "gpt2" "named as TransformerLens names it"
            use logits = model.Forward(expected.["tokens"])
            closeAndMeasured 1e-5 "hf-gpt2 via the hub cache: logits" logits expected.["logits"]
            disposeAll expected

        testCase ("a repository with only pickled weights (torch.save's pytorch_model.bin) downloads and loads to "
                  + "hf-gpt2's logits") <| fun () ->
            use cache = new TempCache()
            let pickled = TestSupport.requireShared "fixtures/pickled/hf-gpt2/pytorch_model.bin"
            let files =
                [ { Name = "config.json"; Bytes = File.ReadAllBytes(fixture [ "tl-oracle"; "hf-gpt2"; "config.json" ]);
                    Lfs = false }
                  { Name = "pytorch_model.bin"; Bytes = File.ReadAllBytes pickled; Lfs = true } ]
            let folder =
                use hub = new FakeHub("lens-test/pickled", gpt2Commit, files)
                PretrainedDownloads.Fetch("lens-test/pickled", hubOptions cache hub)
            Expect.isTrue (File.Exists(Path.Combine(folder, "pytorch_model.bin"))) "the pickled weights were fetched"
            let expected = hfGpt2Expected ()
            use model = HubLayoutLoader.Load(folder, LoadOptions(ProcessWeights = false))
            use logits = model.Forward(expected.["tokens"])
            closeAndMeasured 1e-5 "hf-gpt2 pickled via the hub cache: logits" logits expected.["logits"]
            disposeAll expected

        testCase ("lens download and lens models (processes, HF_ENDPOINT = a hub on 127.0.0.1, HF_HUB_CACHE = a temp "
                  + "folder)") <| fun () ->
            use cache = new TempCache()
            let work = tempDir "cli"
            try
                let download, typo =
                    use hub = new FakeHub("gpt2", gpt2Commit, hfGpt2Files ())
                    // another repository in the same cache, not a known name
                    use other = new FakeHub("lens-test/other", gpt2Commit, hfGpt2Files ())
                    PretrainedDownloads.Fetch("lens-test/other", hubOptions cache other) |> ignore
                    lensIn work (cliEnv cache hub.Url) [ "download"; "gpt2-small" ],
                    lensIn work (cliEnv cache hub.Url) [ "download"; "gpt2-smal" ]
                Expect.equal download.ExitCode 0 (sprintf "lens download: %s%s" download.Stdout download.Stderr)
                Expect.stringContains download.Stdout "gpt2-small (hub id gpt2)" "names the model and its hub id"
                Expect.stringContains download.Stderr "model.safetensors [" "progress bar on stderr"
                Expect.stringContains download.Stderr "100.0%" "progress reaches 100%"
                let line = download.Stdout.Split('\n') |> Array.find (fun l -> l.StartsWith "files are in ")
                let folder = line.Substring("files are in ".Length).Trim()
                Expect.isTrue (folder.StartsWith cache.Dir) "inside HF_HUB_CACHE"
                Expect.isTrue
                    (File.Exists(Path.Combine(folder, "model.safetensors"))
                        && File.Exists(Path.Combine(folder, "config.json"))) "files where it says"

                // The hubs are closed: everything below works from the cache alone.
                let dead = "http://127.0.0.1:9"
                let models = lensIn work (cliEnv cache dead) [ "models" ]
                Expect.equal models.ExitCode 0 (sprintf "lens models: %s%s" models.Stdout models.Stderr)
                let rows = models.Stdout.Split('\n')
                let gpt2Row = rows |> Array.find (fun l -> l.StartsWith "gpt2 ")
                Expect.stringContains gpt2Row "gpt2-small" "aliases listed"
                Expect.stringContains gpt2Row " yes " "gpt2 is cached"
                Expect.stringContains gpt2Row "KiB" "with its size"
                let pythiaRow = rows |> Array.find (fun l -> l.StartsWith "EleutherAI/pythia-70m ")
                Expect.stringContains pythiaRow " no " "pythia-70m is not cached"
                Expect.stringContains models.Stdout "other repositories in the cache" "other cached repos section"
                Expect.isTrue (rows |> Array.exists (fun l -> l.StartsWith "lens-test/other "))
                    "lists the other cached repo"

                let out = Path.Combine(work, "acts.safetensors")
                let cached =
                    lensIn work (cliEnv cache dead) [ "cache"; "gpt2-small"; "--tokens"; "[[13,47,10]]"; "--out"; out ]
                Expect.equal cached.ExitCode 0 (sprintf "lens cache by known name: %s%s" cached.Stdout cached.Stderr)
                use f = SafetensorsFile.Open out
                Expect.sequenceEqual f.Entries.["logits"].Shape [| 1L; 3L; 97L |]
                    "the model came from the cache by its alias"

                Expect.equal typo.ExitCode 1 "a repository the hub does not have is an error"
                Expect.stringContains typo.Stderr "did you mean 'gpt2-small'" "with a suggestion"
                let local = lensIn work (cliEnv cache dead) [ "download"; work ]
                Expect.equal local.ExitCode 2 "a local path is a usage error"
            finally Directory.Delete(work, true)
    ]
