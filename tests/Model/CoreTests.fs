module Lens.Tests.CoreTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

let private scratch = scratchFolder "lens-test"

/// A fresh folder, removed when the test process exits.
let tempDir () = freshFolderIn scratch "test"

let tokensOf (o: Oracle) =
    let e = o.Expected "expected.safetensors"
    let t = e.["tokens"].clone()
    disposeAll e
    t

[<Tests>]
let checkpointTests =
    testList "checkpoints" [
        testCase "save, reload, identical logits" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            use tokens = tokensOf o
            use before = model.Forward(tokens)
            let dir = tempDir ()
            model.Save dir
            Expect.isTrue (HookedTransformer.IsNativeCheckpoint dir) "a native checkpoint folder"
            use reloaded = HookedTransformer.Load dir
            use after = reloaded.Forward(tokens)
            Expect.equal (maxAbsDiff before after) 0.0 "bit-identical logits after a round trip"
            Expect.equal reloaded.Config.ActFn "gelu_new" "config survives"
            use reloadedViaLoader = ModelLoader.Load dir
            Expect.equal reloadedViaLoader.Config.NLayers 2 "ModelLoader resolves a native folder"

        testCase "a config saved by Lens reads back with TransformerLens's field names" <| fun () ->
            let o = Oracle "attnonly"
            use model = o.Model()
            let json = model.Config.ToJson()
            for field in [ "n_layers"; "d_model"; "n_heads"; "d_head"; "d_vocab"; "attn_only"; "normalization_type";
                           "positional_embedding_type" ] do
                Expect.stringContains json ("\"" + field + "\"") field

        testCase "a missing weight is named" <| fun () ->
            let o = Oracle "gpt2like"
            use model = new HookedTransformer(o.Config())
            let pairs =
                model.StateDict() |> Seq.filter (fun kv -> kv.Key <> "blocks.1.attn.W_Q")
                    |> Seq.map (fun kv -> kv.Key, kv.Value.clone()) |> dict
            use other = new HookedTransformer(o.Config())
            let e = Expect.throwsT<CheckpointException> (fun () -> other.LoadStateDict(pairs)) "missing weight"
            ()

        testCase "a wrong shape is named with both shapes" <| fun () ->
            let o = Oracle "gpt2like"
            use model = new HookedTransformer(o.Config())
            let pairs =
                model.StateDict()
                |> Seq.map (fun kv ->
                    Collections.Generic.KeyValuePair(kv.Key,
                                                     (if kv.Key = "embed.W_E" then torch.zeros(3L, 3L) else kv.Value)))
                |> Seq.toArray
            try
                model.LoadStateDict(pairs, "test")
                failtest "expected an error"
            with :? CheckpointException as e ->
                Expect.stringContains e.Message "embed.W_E" "names the tensor"
                Expect.stringContains e.Message "[3, 3]" "names the bad shape"
                Expect.stringContains e.Message "[97, 64]" "names the needed shape"
    ]

let writeRaw (path: string) (header: string) (data: byte[]) =
    use fs = File.Create path
    let h = Text.Encoding.UTF8.GetBytes header
    fs.Write(BitConverter.GetBytes(uint64 h.Length), 0, 8)
    fs.Write(h, 0, h.Length)
    fs.Write(data, 0, data.Length)

let expectSafetensorsError (header: string) (data: byte[]) (fragment: string) =
    let path = Path.Combine(tempDir (), "bad.safetensors")
    writeRaw path header data
    try
        use f = SafetensorsFile.Open path
        failtestf "expected SafetensorsException containing '%s'" fragment
    with :? SafetensorsException as e -> Expect.stringContains e.Message fragment "the message says what is wrong"

[<Tests>]
let safetensorsTests =
    testList "safetensors" [
        testCase "round trip of every supported dtype" <| fun () ->
            let path = Path.Combine(tempDir (), "all.safetensors")
            let tensors =
                [ "f32", torch.randn(3L, 4L)
                  "f16", torch.randn(2L, 2L).to_type(torch.float16)
                  "bf16", torch.randn(5L).to_type(torch.bfloat16)
                  "f64", torch.randn(2L).to_type(torch.float64)
                  "i64", torch.arange(6L).reshape(2L, 3L)
                  "i32", torch.arange(4L).to_type(torch.int32)
                  "bool", torch.tensor([| true; false; true |])
                  "empty", torch.zeros(0L, 3L) ]
            SafetensorsFile.Save(path, tensors |> Seq.map (fun (k, v) -> Collections.Generic.KeyValuePair(k, v)),
                                 readOnlyDict [ "note", "test" ])
            use f = SafetensorsFile.Open path
            Expect.equal f.Metadata.["note"] "test" "metadata"
            for (name, t) in tensors do
                use back = f.Load name
                Expect.equal back.dtype t.dtype name
                Expect.sequenceEqual back.shape t.shape name
                Expect.isTrue (back.eq(t).all().item<bool>()) name

        testCase "header length beyond the file" <| fun () ->
            let path = Path.Combine(tempDir (), "bad.safetensors")
            File.WriteAllBytes(path, Array.append (BitConverter.GetBytes(1000UL)) [| 1uy; 2uy |])
            try
                use f = SafetensorsFile.Open path
                failtest "expected an error"
            with :? SafetensorsException as e ->
                Expect.stringContains e.Message "header length" "says the header length is wrong"
        testCase "file shorter than 8 bytes" <| fun () ->
            let path = Path.Combine(tempDir (), "short.safetensors")
            File.WriteAllBytes(path, [| 1uy; 2uy |])
            Expect.throwsT<SafetensorsException> (fun () -> SafetensorsFile.Open(path).Dispose()) "too short"
        testCase "header that is not JSON" <| fun () -> expectSafetensorsError "{not json" [||] "not valid JSON"
        testCase "unknown dtype"
        <| fun () ->
            expectSafetensorsError """{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}""" [| 0uy |]
                "unknown dtype 'F8'"
        testCase "offsets out of range (truncated data)"
        <| fun () ->
            expectSafetensorsError """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""" (Array.zeroCreate 8)
                "truncated"
        testCase "overlapping tensors" <| fun () ->
            expectSafetensorsError ("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","""
                                    + """"shape":[2],"data_offsets":[4,12]}}""") (Array.zeroCreate 12) "overlap"
        testCase "shape and byte span disagree"
        <| fun () ->
            expectSafetensorsError """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""" (Array.zeroCreate 8)
                "needs 12 bytes"
        testCase ("written two rows at a time, a file is byte for byte the one saved whole; missing, extra or "
                  + "misshapen rows are refused") <| fun () ->
            use a = torch.arange(24.0f).reshape(4L, 3L, 2L)
            use b = torch.tensor([| 10L; 20L; 30L; 40L |])
            let metadata = dict [ "note", "rows" ]
            let path = Path.Combine(tempDir (), "whole.safetensors")
            SafetensorsFile.Save(path,
                                 [ Collections.Generic.KeyValuePair("b", b); Collections.Generic.KeyValuePair("a", a) ],
                                 Collections.Generic.Dictionary metadata)
            let layout =
                SafetensorsLayout.Of([ struct ("a", torch.ScalarType.Float32, [| 4L; 3L; 2L |])
                                       struct ("b", torch.ScalarType.Int64, [| 4L |]) ],
                                     Collections.Generic.Dictionary metadata)
            use stream = new MemoryStream()
            let writer = SafetensorsWriter(stream, layout)
            for start in [ 0L; 2L ] do
                use rowsA = a.narrow(0, start, 2L)
                use rowsB = b.narrow(0, start, 2L)
                writer.Append("a", rowsA)
                writer.Append("b", rowsB)
            writer.Finish()
            Expect.sequenceEqual (stream.ToArray()) (File.ReadAllBytes path) "the same bytes"
            let refused (f: SafetensorsWriter -> unit) (fragment: string) =
                use s = new MemoryStream()
                let e = Expect.throwsC (fun () -> f (SafetensorsWriter(s, layout))) id
                Expect.stringContains e.Message fragment fragment
            refused (fun w -> (use r = a.narrow(0, 0, 2L) in w.Append("a", r)); w.Finish())
                "tensor 'a' of shape [4, 3, 2] got 48 of its 96 bytes"
            refused (fun w -> (use r = torch.zeros(2L, 2L, 2L) in w.Append("a", r)))
                "rows of shape [2, 2, 2] into tensor 'a' of shape [4, 3, 2]"
            refused (fun w -> (use r = torch.zeros(2L, 3L, 2L, dtype = torch.float64) in w.Append("a", r)))
                "dtype Float64 into tensor 'a' of dtype F32"
            refused (fun w -> w.Append("a", a); (use r = a.narrow(0, 0, 1L) in w.Append("a", r))) "no room left"
            refused (fun w -> w.Append("c", a)) "no such tensor"
        testCase "a corrupt weights file is reported by the checkpoint loader" <| fun () ->
            let o = Oracle "attnonly"
            use model = o.Model()
            let dir = tempDir ()
            model.Save dir
            let weights = Path.Combine(dir, "model.safetensors")
            let bytes = File.ReadAllBytes weights
            File.WriteAllBytes(weights, bytes.[.. bytes.Length / 2])
            try
                use m = HookedTransformer.Load dir
                failtest "expected an error"
            with :? CheckpointException as e -> Expect.stringContains e.Message "truncated" "says the file is truncated"
    ]

[<Tests>]
let hookTests =
    testList "hooks and cache" [
        testCase "get_act_name as TransformerLens" <| fun () ->
            Expect.equal (ActName.Get("pattern", 1)) "blocks.1.attn.hook_pattern" "pattern"
            Expect.equal (ActName.Get("q", 0)) "blocks.0.attn.hook_q" "q"
            Expect.equal (ActName.Get("scale", 0, "ln1")) "blocks.0.ln1.hook_scale" "ln1 scale"
            Expect.equal (ActName.Get("scale")) "ln_final.hook_scale" "final scale"
            Expect.equal (ActName.Get("resid_pre", 3)) "blocks.3.hook_resid_pre" "resid_pre"
            Expect.equal (ActName.Get("embed")) "hook_embed" "embed"
            Expect.equal (ActName.Get("post", 2)) "blocks.2.mlp.hook_post" "mlp post"
            Expect.equal (ActName.Get("attn_out", 1)) "blocks.1.hook_attn_out" "attn_out"
            Expect.equal (ActName.Get("pattern1")) "blocks.1.attn.hook_pattern" "compact"
            Expect.equal (ActName.Get("blocks.0.hook_resid_post")) "blocks.0.hook_resid_post" "full name unchanged"

        testCase "cache indexing by shorthand, negative layers, RemoveBatchDim" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            use tokens = tokensOf o
            use run = model.RunWithCache(tokens.narrow(0L, 0L, 1L))
            let c = run.Cache
            Expect.isTrue (Object.ReferenceEquals(c.["pattern", 1], c.["blocks.1.attn.hook_pattern"])) "shorthand"
            Expect.isTrue (Object.ReferenceEquals(c.["pattern", -1], c.["pattern", 1])) "negative layer"
            Expect.isTrue (Object.ReferenceEquals(c.["scale", 0, "ln1"], c.["blocks.0.ln1.hook_scale"])) "ln shorthand"
            Expect.sequenceEqual (c.["pattern", 0].shape) [| 1L; 4L; 12L; 12L |] "batch kept"
            c.RemoveBatchDim() |> ignore
            Expect.sequenceEqual (c.["pattern", 0].shape) [| 4L; 12L; 12L |] "batch removed"
            let ex =
                Expect.throwsT<Collections.Generic.KeyNotFoundException> (fun () ->
                    c.["blocks.0.attn.hook_patern"] |> ignore) "unknown"
            ()

        testCase "unknown hook names suggest the nearest valid ones" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            try
                model.Hook("blocks.0.attn.hook_patern") |> ignore
                failtest "expected an error"
            with :? ArgumentException as e ->
                Expect.stringContains e.Message "blocks.0.attn.hook_pattern" "suggests the right name"

        testCase "names filter caches only what is asked" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            use tokens = tokensOf o
            use run = model.RunWithCache(tokens, HookedTransformer.NamesFilter("blocks.*.attn.hook_pattern"))
            Expect.sequenceEqual run.Cache.Keys [ "blocks.0.attn.hook_pattern"; "blocks.1.attn.hook_pattern" ]
                "two patterns"

        testCase "a scoped hook changes the output and is removed afterwards, even on error" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            use tokens = tokensOf o
            use clean = model.Forward(tokens)
            let zeroHead2 =
                HookFunction(fun z _ ->
                    (let z2 = z.clone() in z2.index_put_(torch.tensor(0.0f), torch.TensorIndex.Ellipsis,
                                                         torch.TensorIndex.Single(2L), torch.TensorIndex.Slice())))
            use ablated = model.RunWithHooks(tokens, struct ("blocks.1.attn.hook_z", zeroHead2))
            Expect.isGreaterThan (maxAbsDiff clean ablated) 1e-4 "the hook changed the logits"
            // The oracle's ablation logits: head 2 of layer 1 zero-ablated.
            let analyses = o.Expected "analyses.safetensors"
            expectClose 1e-5 "ablation logits" ablated analyses.["ablation.logits"]
            disposeAll analyses
            use after = model.Forward(tokens)
            Expect.equal (maxAbsDiff clean after) 0.0 "hooks removed after the run"
            try
                use _ = model.Hooks(struct ("blocks.0.hook_resid_pre", HookFunction(fun _ _ -> failwith "boom")))
                model.Forward(tokens).Dispose()
            with _ -> ()
            Expect.isFalse (model.Hook("blocks.0.hook_resid_pre").HasHooks) "removed after an exception"
            let calls = ref 0
            use h = model.AddHook("hook_embed", HookFunction(fun _ _ -> calls.Value <- calls.Value + 1; null))
            model.Forward(tokens).Dispose()
            model.Forward(tokens).Dispose()
            Expect.equal calls.Value 2 "a permanent hook stays until reset"
            model.ResetHooks()
            model.Forward(tokens).Dispose()
            Expect.equal calls.Value 2 "reset removes it"
    ]

[<Tests>]
let textTests =
    testList "model text" [
        testCase "to_tokens / to_str_tokens / get_token_position as TransformerLens documents them" <| fun () ->
            let cfg =
                HookedTransformerConfig(NLayers = 1, DModel = 8, NCtx = 16, DHead = 4, DVocab = 50257, AttnOnly = true,
                                        TokenizerName = "gpt2", Seed = Nullable 0)
            use model = new HookedTransformer(cfg)
            use batch = model.ToTokens([| "The cat sat on the mat."; "The cat sat on the mat really hard." |])
            let tokens = batch.Tokens
            let rows = [ for b in 0L .. 1L -> [ for p in 0L .. 9L -> tokens.[b, p].item<int64>() ] ]
            Expect.equal rows [ [ 50256L; 464L; 3797L; 3332L; 319L; 262L; 2603L; 13L; 50256L; 50256L ]
                                [ 50256L; 464L; 3797L; 3332L; 319L; 262L; 2603L; 1107L; 1327L; 13L ] ] "padded batch"
            let mask = [ for b in 0L .. 1L -> [ for p in 0L .. 9L -> batch.AttentionMask.[b, p].item<int64>() ] ]
            Expect.equal mask [ [ 1L; 1L; 1L; 1L; 1L; 1L; 1L; 1L; 0L; 0L ]; List.replicate 10 1L ]
                "the mask marks the pads, though the pad id is also BOS"
            Expect.sequenceEqual (model.ToStrTokens "2342+2017=21445")
                [ "<|endoftext|>"; "23"; "42"; "+"; "2017"; "="; "214"; "45" ] "str tokens"
            Expect.equal (model.GetTokenPosition(" cat", "The cat sat on the mat")) 2 "with BOS"
            Expect.equal (model.GetTokenPosition(" cat", "The cat sat on the mat", prependBos = false)) 1 "without BOS"
            Expect.equal (model.ToSingleToken " Mary") 5335 "single token"
            use logits = model.Forward("Hello world")
            Expect.sequenceEqual logits.shape [| 1L; 3L; 50257L |] "text forward"

        testCase "a model without a tokenizer says so when given text" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            let e = Expect.throwsT<InvalidOperationException> (fun () -> model.ToTokens("hi").Dispose()) "no tokenizer"
            ()
    ]

[<Tests>]
let cacheCommandTests =
    testList "lens cache" [
        testCase "writes logits and every activation under TransformerLens names, equal to the oracle" <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            let dir = tempDir ()
            model.Save dir
            let out = Path.Combine(tempDir (), "acts.safetensors")
            let r =
                Processes.lens [ "cache"; dir; "--tokens";
                                 "[[41,31,6,75,34,38,29,72,37,53,65,25],[10,61,32,70,95,70,39,19,69,14,45,42]]";
                                 "--out"; out ]
            Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
            Expect.stringContains r.Stdout "blocks.1.attn.hook_pattern" "the table lists activations"
            let expected = o.Expected "expected.safetensors"
            use written = SafetensorsFile.Open out
            for n in o.HookNames "default" @ [ "logits"; "tokens" ] do
                use t = written.Load n
                expectClose 1e-5 n t expected.[n]
            disposeAll expected

        testCase "--names keeps only the matching activations; --attn-result adds hook_result" <| fun () ->
            let o = Oracle "attnonly"
            use model = o.Model()
            let dir = tempDir ()
            model.Save dir
            let out = Path.Combine(tempDir (), "acts.safetensors")
            let r =
                Processes.lens [ "cache"; dir; "--tokens"; "[1,2,3,4]"; "--out"; out; "--names";
                                 "blocks.*.attn.hook_result"; "--attn-result" ]
            Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
            use written = SafetensorsFile.Open out
            Expect.sequenceEqual (written.Names |> Seq.sort)
                [ "blocks.0.attn.hook_result"; "blocks.1.attn.hook_result"; "logits"; "tokens" ] "filtered"

        testCase "bad input gives a clear message and exit code" <| fun () ->
            let r = Processes.lens [ "cache"; "/nonexistent/model"; "--tokens"; "[1,2]"; "--out"; "/tmp/x.safetensors" ]
            Expect.equal r.ExitCode 1 "model error"
            Expect.stringContains r.Stderr "unknown model" "names the problem"
            Expect.isFalse (r.Stderr.Contains "   at ") "no stack trace"
            let r2 = Processes.lens [ "cache"; "x"; "--tokens"; "[1,"; "--out"; "/tmp/x.safetensors" ]
            Expect.equal r2.ExitCode 2 "usage error"
            Expect.stringContains r2.Stderr "not valid JSON" "says what is wrong"
    ]
