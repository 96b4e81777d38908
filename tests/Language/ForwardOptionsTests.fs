/// TransformerLens's forward options and config fields that Lens used to accept and compute silently
/// wrong: shortformer positions, padded batches with attention masks, start/stop at a layer, soft caps,
/// hooks a flag switches off, and config fields Lens does not implement. Numbers from the tl-oracle sets.
module Lens.Tests.ForwardOptionsTests

open System
open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open Lens
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests

/// max |actual − expected| / max |expected| over the finite entries; −inf entries (masked scores) must match exactly.
let relativeError (what: string) (actual: torch.Tensor) (expected: torch.Tensor) =
    Expect.sequenceEqual actual.shape expected.shape (sprintf "%s: shape" what)
    use a = actual.to_type(torch.float64)
    use e = expected.to_type(torch.float64)
    use eInf = e.isinf()
    use aInf = a.isinf()
    use infMismatch = eInf.logical_xor(aInf)
    Expect.isFalse (infMismatch.any().item<bool>()) (sprintf "%s: -inf (masked) entries differ" what)
    use zero = torch.zeros_like(e)
    use eFinite = torch.where(eInf, zero, e)
    use aFinite = torch.where(aInf, zero, a)
    use diff = (aFinite - eFinite).abs()
    use scale = eFinite.abs().max()
    let s = scale.item<float>()
    let d = if diff.numel() = 0L then 0.0 else diff.max().item<float>()
    if s = 0.0 then d else d / s

/// Records the largest relative error seen per fixture set (printed for the issue's closing figures).
let private worst = Collections.Concurrent.ConcurrentDictionary<string, float>()

let expectRel (set: string) (what: string) (actual: torch.Tensor) (expected: torch.Tensor) =
    let r = relativeError what actual expected
    worst.AddOrUpdate(set, r, fun _ old -> max old r) |> ignore
    if r > 1e-5 then failtestf "%s: relative error %g exceeds 1e-5" what r

let private report set = eprintfn "[parity] %s: max relative error so far %g" set (worst.GetOrAdd(set, 0.0))

let private manifestStrings (o: Oracle) (path: string list) =
    let mutable e = o.Manifest
    for p in path do e <- e.GetProperty p
    [ for x in e.EnumerateArray() -> x.GetString() ]

let shortformerTests =
    let o = Oracle "shortformer"
    testList "shortformer" [
        testCase "positions enter only the query and key inputs: every hook, logits and loss match TransformerLens"
        <| fun () ->
            let expected = o.Expected "expected.safetensors"
            use model = o.Model()
            let tokens = expected.["tokens"]
            use run = model.RunWithCache(tokens, ReturnType.Both, lossPerToken = true)
            expectRel "shortformer" "logits" run.Logits expected.["logits"]
            expectRel "shortformer" "loss_per_token" run.Loss expected.["loss_per_token"]
            use loss = model.Loss(tokens)
            expectRel "shortformer" "loss_mean" loss expected.["loss_mean"]
            let names = o.HookNames "default"
            Expect.sequenceEqual (run.Cache.Keys |> Seq.sort) (names |> Seq.sort)
                "the cache holds exactly TransformerLens's hooks"
            for n in names do expectRel "shortformer" n run.Cache.[n] expected.[n]
            Expect.equal (maxAbsDiff run.Cache.["blocks.0.hook_resid_pre"] run.Cache.["hook_embed"]) 0.0
                "resid_pre of block 0 is hook_embed"
            use fusedLogits = model.Forward(tokens)
            expectRel "shortformer" "logits (fused path)" fusedLogits expected.["logits"]
            report "shortformer"
            disposeAll expected

        testCase "with use_attn_result, hook_result matches" <| fun () ->
            let expected = o.Expected "expected.safetensors"
            use model = o.Model(useAttnResult = true)
            use run = model.RunWithCache(expected.["tokens"])
            for n in o.HookNames "use_attn_result" do expectRel "shortformer" n run.Cache.[n] expected.[n]
            disposeAll expected
    ]

let stopStartTests =
    let o = Oracle "stopstart"
    testList "stop_at_layer / start_at_layer" [
        for k in [ 0; 1; -1 ] do
            let key = if k < 0 then "neg1" else string k
            testCase
                (sprintf
                    "stop_at_layer %d gives TransformerLens's residual, start_at_layer %d its logits and loss, with \
                     the same hooks firing" k k) <| fun () ->
                let expected = o.Expected "expected.safetensors"
                use model = o.Model()
                let tokens = expected.["tokens"]
                use stopped = model.RunWithCache(tokens, ReturnType.Logits, stopAtLayer = k)
                expectRel "stopstart" (sprintf "stop_at_layer_%s.residual" key) stopped.Residual
                    expected.[sprintf "stop_at_layer_%s.residual" key]
                let fired = manifestStrings o [ "hooks_fired"; sprintf "stop_at_layer=%d" k ]
                Expect.sequenceEqual (stopped.Cache.Keys |> Seq.sort) (fired |> Seq.sort)
                    "hooks that fire when stopping"
                for n in fired do expectRel "stopstart" n stopped.Cache.[n] expected.[n]
                let residual = expected.[sprintf "stop_at_layer_%s.residual" key]
                use started = model.RunWithCache(residual, ReturnType.Both, startAtLayer = k, lossTokens = tokens)
                expectRel "stopstart" (sprintf "start_at_layer_%s.logits" key) started.Logits
                    expected.[sprintf "start_at_layer_%s.logits" key]
                expectRel "stopstart" (sprintf "start_at_layer_%s.loss_mean" key) started.Loss
                    expected.[sprintf "start_at_layer_%s.loss_mean" key]
                let firedStart = manifestStrings o [ "hooks_fired"; sprintf "start_at_layer=%d" k ]
                Expect.sequenceEqual (started.Cache.Keys |> Seq.sort) (firedStart |> Seq.sort)
                    "hooks that fire when starting"
                use plain = model.Forward(residual, ReturnType.Logits, startAtLayer = k)
                expectRel "stopstart" "start_at_layer logits (fused path)" plain.Logits
                    expected.[sprintf "start_at_layer_%s.logits" key]
                report "stopstart"
                disposeAll expected

        testCase "from F#: Model.runToLayer and Model.runFromLayer" <| fun () ->
            let expected = o.Expected "expected.safetensors"
            use model = o.Model()
            use residual = model |> Lens.FSharp.Model.runToLayer 1 expected.["tokens"]
            expectRel "stopstart" "F# runToLayer 1" residual expected.["stop_at_layer_1.residual"]
            use logits = model |> Lens.FSharp.Model.runFromLayer 1 residual
            expectRel "stopstart" "F# runFromLayer 1" logits expected.["start_at_layer_1.logits"]
            disposeAll expected

        testCase "a layer out of range, or a loss from a stopped run, is refused" <| fun () ->
            use model = o.Model()
            use tokens = torch.tensor([| 1L; 2L; 3L |])
            Expect.throwsC (fun () -> model.Forward(tokens, ReturnType.Logits, stopAtLayer = 3).Dispose())
                (fun e -> Expect.stringContains e.Message "stop_at_layer = 3" "names the argument")
            Expect.throwsC (fun () -> model.Forward(tokens, ReturnType.Loss, stopAtLayer = 1).Dispose())
                (fun e -> Expect.stringContains e.Message "residual" "says what a stopped run returns")
    ]

let paddedTests =
    let o = Oracle "padded"
    let side (name: string) =
        testCase
            (sprintf
                "%s-padded batch with its attention mask: every hook, logits and masked loss match TransformerLens; \
                 real tokens equal each text alone" name) <| fun () ->
            let expected = o.Expected (sprintf "expected_%s_padded.safetensors" name)
            let alone = o.Expected "unpadded_reference.safetensors"
            use model = o.Model()
            let tokens, mask = expected.["tokens"], expected.["attention_mask"]
            use run = model.RunWithCache(tokens, ReturnType.Both, lossPerToken = true, attentionMask = mask)
            expectRel "padded" "logits" run.Logits expected.["logits"]
            expectRel "padded" "loss_per_token" run.Loss expected.["loss_per_token"]
            use loss = model.Loss(tokens, attentionMask = mask)
            expectRel "padded" "loss_mean" loss expected.["loss_mean"]
            let names = o.HookNames (name + "-padded")
            Expect.sequenceEqual (run.Cache.Keys |> Seq.sort) (names |> Seq.sort)
                "the cache holds exactly TransformerLens's hooks"
            for n in names do expectRel "padded" (name + " " + n) run.Cache.[n] expected.[n]
            // The fused path (no hook needs the pattern), with only hook_z cached.
            use fusedRun =
                model.RunWithCache(tokens, ReturnType.Logits, HookedTransformer.NamesFilter("blocks.*.attn.hook_z"),
                                   attentionMask = mask)
            expectRel "padded" "logits (fused attention)" fusedRun.Logits expected.["logits"]
            for l in 0 .. 1 do
                let n = sprintf "blocks.%d.attn.hook_z" l
                expectRel "padded" (n + " (fused attention; zero at leading pads)") fusedRun.Cache.[n] expected.[n]
            for r in 0 .. 2 do
                let own = alone.[sprintf "seq%d.logits" r]
                use realPositions = mask.[r].nonzero().squeeze(1)
                use real = run.Logits.[r].index_select(0L, realPositions).unsqueeze(0)
                expectRel "padded" (sprintf "row %d's real-token logits vs the text alone" r) real own
            report "padded"
            disposeAll expected
            disposeAll alone
    let cli (name: string) =
        testCase
            (sprintf "lens cache --attention-mask on the %s-padded batch writes TransformerLens's activations" name)
            <| fun () ->
            let expected = o.Expected (sprintf "expected_%s_padded.safetensors" name)
            use model = o.Model()
            let dir = Lens.Tests.CoreTests.tempDir ()
            model.Save dir
            let out = Path.Combine(Lens.Tests.CoreTests.tempDir (), "acts.safetensors")
            let json (t: torch.Tensor) =
                "["
                    + String.Join(",",
                                  [ for r in 0L .. t.shape.[0] - 1L ->
                                      "[" + String.Join(",", t.[r].data<int64>().ToArray()) + "]" ]) + "]"
            let r =
                Processes.lens [ "cache"; dir; "--tokens"; json expected.["tokens"]; "--attention-mask";
                                 json expected.["attention_mask"]; "--out"; out ]
            Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
            use written = IO.SafetensorsFile.Open out
            for n in o.HookNames (name + "-padded") @ [ "logits"; "attention_mask" ] do
                use t = written.Load n
                expectRel "padded" ("lens cache " + name + " " + n) t expected.[n]
            report "padded"
            let bad =
                Processes.lens [ "cache"; dir; "--tokens"; "[[1,2,3]]"; "--attention-mask"; "[[1,1]]"; "--out"; out ]
            Expect.equal bad.ExitCode 2 "a mask of the wrong shape is a usage error"
            Expect.stringContains bad.Stderr "--attention-mask has shape [1, 2]" "names the option and the shapes"
            disposeAll expected
    testList "padded batches" [ side "right"; side "left"; cli "right"; cli "left" ]

let softCapTests =
    let o = Oracle "gpt2like"
    testList "soft caps" [
        testCase ("attn_scores_soft_cap gives cap·tanh(scores/cap) before the mask; output_logits_soft_cap caps the "
                  + "returned logits, not unembed.hook_out") <| fun () ->
            let expected = o.Expected "expected.safetensors"
            let tokens = expected.["tokens"]
            use plain = o.Model()
            use plainRun = plain.RunWithCache(tokens)
            let cfg = o.Config()
            cfg.AttnScoresSoftCap <- 0.5
            cfg.OutputLogitsSoftCap <- 0.3
            use capped = new HookedTransformer(cfg)
            use f = IO.SafetensorsFile.Open(Path.Combine(o.Dir, "weights.safetensors"))
            capped.LoadStateDict(f.Names |> Seq.map (fun n -> Collections.Generic.KeyValuePair(n, f.Load n)), "weights")
            // Block 0 sees the same input, so its capped scores are the plain ones through cap·tanh(·/cap).
            let raw = plainRun.Cache.["blocks.0.attn.hook_attn_scores"]
            use squashed = (raw / 0.5).tanh() * 0.5
            use rawInf = raw.isinf()
            use want = torch.where(rawInf, raw, squashed)   // masked scores stay -inf: the cap comes before the mask
            use capRun = capped.RunWithCache(tokens)
            let got = capRun.Cache.["blocks.0.attn.hook_attn_scores"]
            expectRel "softcap" "capped scores" got want
            use maxAbs = got.masked_fill(got.isinf(), 0.0).abs().max()
            Expect.isLessThanOrEqual (maxAbs.item<float32>()) 0.5f "scores stay within the cap"
            use rawMax = raw.masked_fill(raw.isinf(), 0.0).abs().max()
            Expect.isGreaterThan (rawMax.item<float32>()) 0.5f "the cap bites on this input"
            let hookOut = capRun.Cache.["unembed.hook_out"]
            use wantLogits = (hookOut / 0.3).tanh() * 0.3
            expectRel "softcap" "returned logits are the capped hook_out" capRun.Logits wantLogits
            use hookOutMax = hookOut.abs().max()
            Expect.isGreaterThan (hookOutMax.item<float32>()) 0.3f "unembed.hook_out holds the uncapped logits"
            use fusedLogits = capped.Forward(tokens)
            expectRel "softcap" "no hooks: the capped scores are still used" fusedLogits capRun.Logits
            disposeAll expected
    ]

let configTests =
    testList "closed config" [
        testCase ("a config with relative_attention_num_buckets fails to load, naming the field, its value and an "
                  + "alternative") <| fun () ->
            let o = Oracle "gpt2like"
            let json = Nodes.JsonNode.Parse(o.Manifest.GetProperty("config").GetRawText()).AsObject()
            json.["relative_attention_num_buckets"] <- Nodes.JsonValue.Create 32
            let message =
                messageOf<ArgumentException> (fun () ->
                    HookedTransformerConfig.FromJson(json.ToJsonString(), "test config") |> ignore)
            Expect.stringContains message "relative_attention_num_buckets" "names the field"
            Expect.stringContains message "= 32" "names the value"
            Expect.stringContains message "positional_embedding_type standard or rotary" "names the alternative"

        testCase ("every field of TransformerLens 3.5.1's config is in the table; defaults load; metadata is kept; "
                  + "n_params as TransformerLens") <| fun () ->
            let o = Oracle "padded"
            let config = o.Manifest.GetProperty("config")
            let names = [ for p in config.EnumerateObject() -> p.Name ]
            Expect.equal names.Length 79 "TransformerLens 3.5.1 writes 79 fields"
            Expect.sequenceEqual (names |> List.sort) (ConfigFields.All |> Seq.map (fun f -> f.Name) |> Seq.sort)
                "the table lists exactly those"
            let cfg = HookedTransformerConfig.FromJson(config.GetRawText(), "padded")
            Expect.equal cfg.NParams (Nullable (config.GetProperty("n_params").GetInt64())) "n_params"
            Expect.isTrue (cfg.ToJsonObject().ContainsKey "checkpoint_index") "metadata fields are written back"
            let doc = File.ReadAllText(Path.Combine(repoRoot, "docs", "config-fields.md"))
            for f in ConfigFields.All do
                Expect.stringContains doc (sprintf "| `%s` |" f.Name) (sprintf "docs/config-fields.md lists %s" f.Name)

        testCase "post_embedding_ln true and n_devices 2 are refused; their defaults load" <| fun () ->
            let o = Oracle "gpt2like"
            for field, value in [ "post_embedding_ln", Nodes.JsonValue.Create true :> Nodes.JsonNode;
                                  "n_devices", Nodes.JsonValue.Create 2 ] do
                let json = Nodes.JsonNode.Parse(o.Manifest.GetProperty("config").GetRawText()).AsObject()
                json.[field] <- value
                let message =
                    messageOf<ArgumentException> (fun () ->
                        HookedTransformerConfig.FromJson(json.ToJsonString(), "t") |> ignore)
                Expect.stringContains message field "names the field"
    ]

let disabledHookTests =
    testList "hooks a config flag switches off" [
        testCase ("hooking, caching by name or filtering for hook_result without use_attn_result is an error naming "
                  + "the flag") <| fun () ->
            let o = Oracle "gpt2like"
            use model = o.Model()
            use tokens = torch.tensor([| 1L; 2L; 3L |])
            let noOp = HookFunction(fun _ _ -> null)
            Expect.throwsC (fun () -> model.AddHook("blocks.0.attn.hook_result", noOp) |> ignore)
                (fun e -> Expect.stringContains e.Message "use_attn_result" "AddHook")
            Expect.throwsC (fun () ->
                model.RunWithCache(tokens, HookedTransformer.NamesFilter("blocks.*.attn.hook_result")).Dispose())
                (fun e -> Expect.stringContains e.Message "use_attn_result" "names filter")
            Expect.throwsC (fun () ->
                model.RunWithCache(tokens, (fun (n: string) -> n.EndsWith "hook_q_input")).Dispose())
                (fun e -> Expect.stringContains e.Message "use_split_qkv_input" "predicate")
            Expect.throwsC (fun () -> model.RunWithHooks(tokens, struct ("blocks.1.hook_mlp_in", noOp)).Dispose())
                (fun e -> Expect.stringContains e.Message "use_hook_mlp_in" "RunWithHooks")
            use all = model.RunWithCache(tokens)
            Expect.isFalse (all.Cache.ContainsKey "blocks.0.attn.hook_result")
                "a filter selecting every hook still runs; the switched-off ones record nothing"
            model.Config.UseAttnResult <- true
            use withFlag = model.RunWithCache(tokens, HookedTransformer.NamesFilter("blocks.*.attn.hook_result"))
            Expect.equal withFlag.Cache.Count 2 "with the flag on it fires"
    ]

/// A random GPT-2-vocabulary model (the real GPT-2 tokenizer) for tests on text batches.
let private textModelWith (positions: string) =
    let cfg = HookedTransformerConfig(NLayers = 2, DModel = 32, NCtx = 48, DHead = 8, DVocab = 50257,
                                      DMlp = Nullable 64, ActFn = "gelu_new",
                                      TokenizerName = "gpt2", Seed = Nullable 3, PositionalEmbeddingType = positions)
    new HookedTransformer(cfg)

let private textModel () = textModelWith "standard"

let textBatchTests =
    testList "several texts in one batch" [
        testCase "two texts in one input give each text's own loss within 1e-5" <| fun () ->
            use model = textModel ()
            let texts = [| "The cat sat on the mat."; "A much longer sentence about a dog that ran across the field." |]
            use batch = model.ToTokens(texts)
            for r in 0 .. 1 do
                use aloneTokens = model.ToTokens(texts.[r])
                use alone = model.Loss(aloneTokens)
                use one =
                    model.Loss(batch.Tokens.narrow(0, int64 r, 1L),
                               attentionMask = batch.AttentionMask.narrow(0, int64 r, 1L))
                Expect.floatClose { absolute = 1e-5; relative = 0.0 } (float (one.item<float32>()))
                    (float (alone.item<float32>())) (sprintf "row %d alone" r)
            use both = model.Loss(batch.Tokens, perToken = true, attentionMask = batch.AttentionMask)
            for r in 0 .. 1 do
                use aloneTokens = model.ToTokens(texts.[r])
                use alonePerToken = model.Loss(aloneTokens, perToken = true)
                let n = alonePerToken.shape.[1]
                use mine = both.[r].narrow(0, 0L, n).unsqueeze(0)
                expectRel "text batch" (sprintf "row %d per-token loss" r) mine alonePerToken
            use unmasked = model.Loss(batch.Tokens)
            use masked = model.Loss(batch.Tokens, attentionMask = batch.AttentionMask)
            Expect.isGreaterThan (abs (unmasked.item<float32>() - masked.item<float32>())) 1e-3f
                "without the mask the pads would count"

        testCase ("left-padded generation equals per-prompt generation token for token (key-value cache and without; "
                  + "standard, rotary, shortformer positions)") <| fun () ->
          for positions in [ "standard"; "rotary"; "shortformer" ] do
            use model = textModelWith positions
            let prompts = [| "Once upon a time"; "The quick brown fox jumps over the lazy" |]
            for useCache in [ true; false ] do
                let options = GenerationOptions(Greedy = true, UseKvCache = useCache, StopAtEos = false)
                use batch = model.ToTokens(prompts, paddingSide = "left")
                use generated = model.Generate(batch.Tokens, 8, options, batch.AttentionMask)
                for r in 0 .. 1 do
                    use alone = model.ToTokens(prompts.[r])
                    use own = model.Generate(alone, 8, options)
                    let width = generated.shape.[1]
                    let n = own.shape.[1]
                    use mine = generated.[r].narrow(0, width - n, n)
                    Expect.sequenceEqual (mine.data<int64>().ToArray()) (own.[0].data<int64>().ToArray())
                        (sprintf "row %d (%s, kv cache %b)" r positions useCache)
            use right = model.ToTokens(prompts)
            Expect.throwsC (fun () ->
                model.Generate(right.Tokens, 2, GenerationOptions(Greedy = true), right.AttentionMask).Dispose())
                (fun e -> Expect.stringContains e.Message "left" "right padding is refused for generation")

        testCase "the end-of-sequence id comes from the tokenizer; a batch stops each row at its own" <| fun () ->
            use model = textModel ()
            Expect.equal model.EosTokenId (Nullable 50256L) "GPT-2's <|endoftext|>"
            let prompts = [| "Once upon a time"; "The quick brown fox jumps over the lazy" |]
            use first = model.ToTokens(prompts.[0])
            use firstRun = model.Generate(first, 1, GenerationOptions(Greedy = true, StopAtEos = false))
            let eos = firstRun.[0, -1L].item<int64>()          // row 0's first new token, used as its end of sequence
            let options = GenerationOptions(Greedy = true, EosTokenId = Nullable eos)
            use batch = model.ToTokens(prompts, paddingSide = "left")
            use generated = model.Generate(batch.Tokens, 6, options, batch.AttentionMask)
            let width = generated.shape.[1]
            let promptWidth = batch.Tokens.shape.[1]
            Expect.sequenceEqual (generated.[0].narrow(0, promptWidth, width - promptWidth).data<int64>().ToArray())
                (Array.create (int (width - promptWidth)) eos)
                "row 0 stops at once and is filled with its end of sequence"
            use second = model.ToTokens(prompts.[1])
            use secondAlone = model.Generate(second, 6, options)
            let n = secondAlone.shape.[1]
            Expect.sequenceEqual (generated.[1].narrow(0, width - n, n).data<int64>().ToArray())
                (secondAlone.[0].data<int64>().ToArray()) "row 1 runs on as if alone"
    ]

let dslTests =
    testList "experiments with several texts and config flags" [
        testCase ("input \"a\", \"b\": loss is the masked mean, predict skips pads, generate gives each text as if "
                  + "alone; logit_lens runs on it") <| fun () ->
            use model = textModel ()
            let dir = Lens.Tests.CoreTests.tempDir ()
            model.Save dir
            let texts = [| "The cat sat on the mat."; "A much longer sentence about a dog that ran across the field." |]
            let acts = Path.Combine(Lens.Tests.CoreTests.tempDir (), "acts.safetensors")
            let state =
                Lens.Tests.DslRuntimeTests.run
                    (sprintf
                        "model %s\ninput \"%s\", \"%s\"\nloss\npredict\ngenerate 5 greedy\n\
                         cache save \"%s\" filter \"blocks.*.attn.hook_z\"\n" dir texts.[0] texts.[1] acts)
            use batch = model.ToTokens(texts)
            use libraryLoss = model.Loss(batch.Tokens, attentionMask = batch.AttentionMask)
            Expect.equal (Lens.Tests.DslRuntimeTests.scalarOf (Lens.Tests.DslRuntimeTests.result "loss" state))
                (Lens.Dsl.Runtime.Numbers.FromFloat(libraryLoss.item<float32>())) "the library's masked loss"
            match (Lens.Tests.DslRuntimeTests.result "predict" state).Value with
            | :? Lens.Dsl.Runtime.TableValue as t ->
                use lengths = batch.AttentionMask.sum(1L)
                Expect.equal t.Rows.Length (int (lengths.sum().item<int64>())) "one row per real token"
            | other -> failtestf "predict gave %s" other.Kind
            match (Lens.Tests.DslRuntimeTests.result "generate" state).Value with
            | :? Lens.Dsl.Runtime.TextValue as t ->
                for r in 0 .. 1 do
                    use alone = model.ToTokens(texts.[r])
                    use own = model.Generate(alone, 5, GenerationOptions(Greedy = true, Seed = Nullable 0L))
                    Expect.equal t.Texts.[r] (model.ToText own) (sprintf "text %d generates as if alone" r)
            | other -> failtestf "generate gave %s" other.Kind
            use libraryRun =
                model.RunWithCache(batch.Tokens, ReturnType.Logits,
                                   HookedTransformer.NamesFilter("blocks.*.attn.hook_z"),
                                   attentionMask = batch.AttentionMask)
            use written = IO.SafetensorsFile.Open acts
            for n in [ "blocks.0.attn.hook_z"; "blocks.1.attn.hook_z" ] do
                use t = written.Load n
                expectRel "text batch" ("cache save " + n) t libraryRun.Cache.[n]
            use savedMask = written.Load "attention_mask"
            Expect.equal (maxAbsDiff savedMask batch.AttentionMask) 0.0 "the mask is saved with the activations"
            // Every statement takes padded texts now (tests/Language/PaddedStatementTests.fs checks each against the
            // texts alone).
            let lens =
                Lens.Tests.DslRuntimeTests.run
                    (sprintf "model %s\ninput \"%s\", \"%s\"\nlogit_lens\n" dir texts.[0] texts.[1])
            Expect.equal (Lens.Tests.DslRuntimeTests.results "logit_lens" lens).Length 1
                "logit_lens runs on the padded input"

        testCase "use attn_result makes hook_result printable and is recorded; without it the check names the flag"
        <| fun () ->
            let tiny = Lens.Tests.DslRuntimeTests.tinyModel
            let errors =
                Lens.Tests.DslRuntimeTests.errorText
                    (tiny + "input tokens [1, 2, 3]\nprint blocks.0.attn.hook_result\n")
            Expect.stringContains errors ("test.lens:3:7: hook point 'blocks.0.attn.hook_result' fires only with "
                                          + "use_attn_result = true") "the check names the flag, with line and column"
            Expect.stringContains errors "`use attn_result`" "and the statement that turns it on"
            let state =
                Lens.Tests.DslRuntimeTests.run (tiny + ("use attn_result\ninput tokens [1, 2, 3]\n"
                                                        + "print blocks.0.attn.hook_result\n"))
            Expect.sequenceEqual state.Flags [ Lens.Dsl.ModelFlag.AttnResult ]
                "the flag is in the state (the run JSON's config_flags)"
            Expect.equal (Lens.Tests.DslRuntimeTests.results "print" state).Length 1 "printed"
            Expect.isFalse state.Model.Model.Config.UseAttnResult "the model's own config is restored after each stage"
    ]

[<Tests>]
let tests =
    testList "forward options" [
        shortformerTests
        stopStartTests
        paddedTests
        softCapTests
        configTests
        disabledHookTests
        textBatchTests
        dslTests
    ]
