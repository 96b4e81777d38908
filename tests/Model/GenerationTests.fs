module Lens.Tests.GenerationTests

open System.Text.Json
open Expecto
open TorchSharp
open Lens
open Lens.Tests.ParityTests

let private tokensOf (e: JsonElement) =
    let rows = [| for r in e.EnumerateArray() -> [| for x in r.EnumerateArray() -> x.GetInt64() |] |]
    torch.tensor(Array.concat rows, dtype = torch.int64).reshape(int64 rows.Length, int64 rows.[0].Length)

let private toArray (t: torch.Tensor) = t.contiguous().data<int64>().ToArray()

let private greedy useKvCache = GenerationOptions(Greedy = true, StopAtEos = false, UseKvCache = useKvCache)

let private sampled seed = GenerationOptions(Seed = System.Nullable seed, StopAtEos = false)

/// A small rotary model with grouped-query attention: the cache must rotate keys at their absolute positions.
let private rotaryModel () =
    let cfg =
        HookedTransformerConfig(NLayers = 2, DModel = 32, NHeads = 4, DHead = 8, NKeyValueHeads = System.Nullable 2,
                                NCtx = 64,
                                DVocab = 50, ActFn = "silu", GatedMlp = true, NormalizationType = "RMS",
                                PositionalEmbeddingType = "rotary", Seed = System.Nullable 7)
    new HookedTransformer(cfg)

/// A hook on the logits that replaces every position's logits with fixed per-row values [batch, d_vocab].
let private forceLogits (model: HookedTransformer) (logits: torch.Tensor) =
    model.Hooks([| struct ("unembed.hook_out",
                           HookFunction(fun act _ -> logits.unsqueeze(1).expand(act.shape).clone())) |])

/// Probabilities 0.4, 0.3, 0.1 on tokens 7, 3, 11 and 0.2 spread over the other 94 of 97.
let private knownLogits (batch: int64) =
    let p = Array.create 97 (0.2 / 94.0)
    p.[7] <- 0.4; p.[3] <- 0.3; p.[11] <- 0.1
    torch.tensor(p |> Array.map (fun x -> float32 (log x)), dtype = torch.float32)
        .unsqueeze(0).expand(batch, 97L).contiguous()

let private sampledSupport (options: GenerationOptions) =
    let oracle = Oracle "attnonly"
    use model = oracle.Model()
    use logits = knownLogits 64L
    use _ = forceLogits model logits
    use prompt = torch.zeros(64L, 2L, dtype = torch.int64)
    use out = model.Generate(prompt, 20, options)
    out.narrow(1, 2L, 20L) |> toArray |> Set.ofArray

let private fixtureGeneration (set: string) =
    let oracle = Oracle set
    let gen = oracle.Manifest.GetProperty("generation")
    testList set [
        for useCache in [ true; false ] do
            testCase
                (sprintf "greedy generation reproduces TransformerLens's output_tokens %s the kv cache"
                    (if useCache then "with" else "without")) <| fun () ->
                use model = oracle.Model()
                use prompt = tokensOf (gen.GetProperty "prompt")
                use expected = tokensOf (gen.GetProperty "output_tokens")
                use out = model.Generate(prompt, 8, greedy useCache)
                Expect.sequenceEqual (toArray out) (toArray expected) "output tokens"
        testCase "the kv cache keeps absolute positions (unlike TransformerLens's default call, recorded as buggy)"
        <| fun () ->
            use model = oracle.Model()
            use prompt = tokensOf (gen.GetProperty "prompt")
            use buggy = tokensOf (gen.GetProperty "output_tokens_tl_default_kv_cache")
            use out = model.Generate(prompt, 8, greedy true)
            Expect.isFalse (gen.GetProperty("tl_default_kv_cache_correct").GetBoolean())
                "the fixture records TL's default as wrong"
            Expect.notEqual (toArray out) (toArray buggy) "our cached generation differs from TL's buggy positions"
    ]

[<Tests>]
let tests =
    testList "generation" [
        fixtureGeneration "gpt2like"
        fixtureGeneration "attnonly"

        testCase "cached and uncached greedy generation agree over the whole context (batch of 3, both fixtures)"
        <| fun () ->
            for set in [ "gpt2like"; "attnonly" ] do
                use model = (Oracle set).Model()
                use g = new torch.Generator(11UL)
                use prompt = torch.randint(0L, 97L, [| 3L; 5L |], dtype = torch.int64, generator = g)
                use cached = model.Generate(prompt, 27, greedy true)
                use uncached = model.Generate(prompt, 27, greedy false)
                Expect.equal cached.shape [| 3L; 32L |] "prompt + 27 new tokens"
                Expect.sequenceEqual (toArray cached) (toArray uncached) (set + ": cached = uncached")

        testCase "cached and uncached greedy generation agree on a rotary grouped-query model (58 new tokens)"
        <| fun () ->
            use model = rotaryModel ()
            use g = new torch.Generator(5UL)
            use prompt = torch.randint(0L, 50L, [| 2L; 6L |], dtype = torch.int64, generator = g)
            use cached = model.Generate(prompt, 58, greedy true)
            use uncached = model.Generate(prompt, 58, greedy false)
            Expect.sequenceEqual (toArray cached) (toArray uncached) "cached = uncached"

        testCase "the last step's cached logits equal a full forward pass on the generated sequence" <| fun () ->
            use model = (Oracle "gpt2like").Model()
            use prompt = torch.tensor([| 1L; 2L; 3L; 4L |], dtype = torch.int64)
            use out = model.Generate(prompt, 10, greedy true)
            Expect.equal out.shape [| 14L |] "a 1-D prompt gives a 1-D result"
            use cache = new Components.KeyValueCache(model.Config.NLayers)
            use first = model.Forward(out.narrow(0, 0L, 13L), ReturnType.Logits, false, cache)
            use step = model.Forward(out.narrow(0, 13L, 1L), ReturnType.Logits, false, cache)
            use full = model.Forward(out)
            TestSupport.expectClose 1e-5 "cached last-position logits" (step.Logits.select(1, 0L)) (full.select(1, 13L))

        testCase "seeded sampling is reproducible, with and without the cache, and differs across seeds" <| fun () ->
            use model = (Oracle "attnonly").Model()
            use prompt = torch.tensor([| 5L; 6L; 7L |], dtype = torch.int64)
            use a = model.Generate(prompt, 25, sampled 1L)
            use b = model.Generate(prompt, 25, sampled 1L)
            use c = model.Generate(prompt, 25, sampled 2L)
            Expect.sequenceEqual (toArray a) (toArray b) "same seed, same tokens"
            Expect.notEqual (toArray a) (toArray c) "another seed, other tokens"
            use noCache =
                model.Generate(prompt, 25,
                               GenerationOptions(Seed = System.Nullable 1L, StopAtEos = false, UseKvCache = false))
            Expect.sequenceEqual (toArray noCache) (toArray a) "the cache does not change what is sampled"

        testCase "without restriction, sampling from the known distribution reaches beyond the top tokens" <| fun () ->
            let support = sampledSupport (sampled 3L)
            Expect.isGreaterThan support.Count 20 (sprintf "many tokens sampled: %A" support)

        testCase "top-k = 2 samples only the two most likely tokens (and both)" <| fun () ->
            Expect.equal
                (sampledSupport
                    (GenerationOptions(Seed = System.Nullable 3L, TopK = System.Nullable 2, StopAtEos = false)))
                (set [ 3L; 7L ]) "support"

        testCase "top-p keeps the most likely tokens up to and including the one that crosses p" <| fun () ->
            Expect.equal
                (sampledSupport
                    (GenerationOptions(Seed = System.Nullable 3L, TopP = System.Nullable 0.65, StopAtEos = false)))
                (set [ 3L; 7L ]) "p = 0.65"
            Expect.equal
                (sampledSupport
                    (GenerationOptions(Seed = System.Nullable 3L, TopP = System.Nullable 0.75, StopAtEos = false)))
                (set [ 3L; 7L; 11L ]) "p = 0.75"

        testCase "temperature 0 is greedy" <| fun () ->
            Expect.equal (sampledSupport (GenerationOptions(Temperature = 0.0, StopAtEos = false))) (set [ 7L ])
                "argmax only"

        testCase "RestrictSupport masks exactly the removed logits" <| fun () ->
            use logits = torch.tensor([| 1.0f; 4.0f; 2.0f; 3.0f |]).unsqueeze(0)
            use k2 = Sampling.RestrictSupport(logits, System.Nullable 2, System.Nullable())
            Expect.sequenceEqual (k2.isinf().squeeze(0).data<bool>().ToArray()) [| true; false; true; false |] "top-2"
            use p = Sampling.RestrictSupport(logits, System.Nullable(), System.Nullable 0.5)
            // probabilities 0.03, 0.64, 0.09, 0.24: the most likely token alone exceeds 0.5
            Expect.sequenceEqual (p.isinf().squeeze(0).data<bool>().ToArray()) [| true; false; true; true |] "top-p 0.5"
            use p2 = Sampling.RestrictSupport(logits, System.Nullable(), System.Nullable 0.7)
            Expect.sequenceEqual (p2.isinf().squeeze(0).data<bool>().ToArray()) [| true; false; true; false |]
                "top-p 0.7 keeps the token that crosses it"

        testCase "stop at EOS: finished rows are padded with EOS, and generation ends when all rows finished"
        <| fun () ->
            use model = (Oracle "attnonly").Model()
            use prompt = torch.zeros(2L, 3L, dtype = torch.int64)
            let rowLogits (tokens: int64[]) =
                let t = torch.full(2L, 97L, -10.0f)
                for row in 0 .. 1 do t.[int64 row, tokens.[row]] <- torch.tensor(10.0f)
                t
            let generate (forced: torch.Tensor) =
                use _ = forceLogits model forced
                model.Generate(prompt, 6, GenerationOptions(Greedy = true, EosTokenId = System.Nullable 5L))
            use mixed = rowLogits [| 5L; 9L |]
            use out = generate mixed
            Expect.equal out.shape [| 2L; 9L |] "row 1 never finishes: all 6 steps run"
            Expect.sequenceEqual (toArray (out.narrow(1, 3L, 6L))) [| 5L; 5L; 5L; 5L; 5L; 5L; 9L; 9L; 9L; 9L; 9L; 9L |]
                "row 0 EOS-padded"
            use both = rowLogits [| 5L; 5L |]
            use early = generate both
            Expect.equal early.shape [| 2L; 4L |] "all rows finished after one token"

        testCase "bad arguments are clear errors" <| fun () ->
            use model = (Oracle "attnonly").Model()
            use prompt = torch.zeros(1L, 4L, dtype = torch.int64)
            let err (f: unit -> unit) (needle: string) =
                match (try f (); None with :? System.ArgumentException as e -> Some e.Message) with
                | Some message -> Expect.stringContains message needle "message"
                | None -> failtestf "expected an ArgumentException mentioning '%s'" needle
            err (fun () -> model.Generate(prompt, 40).Dispose()) "exceeds the model's context n_ctx = 32"
            err (fun () -> model.Generate(prompt, -1).Dispose()) "max_new_tokens"
            err (fun () -> model.Generate(prompt, 2, GenerationOptions(TopP = System.Nullable 1.5)).Dispose()) "top_p"
            err (fun () -> model.Generate(prompt, 2, GenerationOptions(TopK = System.Nullable 0)).Dispose()) "top_k"
            use floats = torch.zeros(1L, 4L)
            err (fun () -> model.Generate(floats, 2).Dispose()) "int64"
    ]
