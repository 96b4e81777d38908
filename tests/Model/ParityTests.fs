module Lens.Tests.ParityTests

open System.IO
open System.Text.Json
open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Tests.TestSupport

/// An oracle fixture set: its manifest, the model built from its config and weights, and its expected tensors.
type Oracle(name: string) =
    let dir = fixture [ "tl-oracle"; name ]
    let manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json")))
    member _.Dir = dir
    member _.Manifest = manifest.RootElement
    member _.Config(?useAttnResult: bool) =
        let cfg = HookedTransformerConfig.FromJson(manifest.RootElement.GetProperty("config").GetRawText(), name)
        cfg.UseAttnResult <- defaultArg useAttnResult false
        cfg.InitWeights <- false
        cfg
    member this.Model(?useAttnResult: bool) =
        let model = new HookedTransformer(this.Config(defaultArg useAttnResult false))
        use f = SafetensorsFile.Open(Path.Combine(dir, "weights.safetensors"))
        model.LoadStateDict(f.Names |> Seq.map (fun n -> System.Collections.Generic.KeyValuePair(n, f.Load n)),
                            "weights")
        model
    member _.Expected(file: string) = SafetensorsFile.LoadAll(Path.Combine(dir, file))
    member _.HookNames(run: string) =
        [ for h in manifest.RootElement.GetProperty("hooks").EnumerateArray() do
            if h.GetProperty("run").GetString().StartsWith(run) then yield h.GetProperty("name").GetString() ]

let disposeAll (d: System.Collections.Generic.Dictionary<string, torch.Tensor>) = for t in d.Values do t.Dispose()

let parity (set: string) =
    let oracle = Oracle set
    testList set [
        testCase "logits, loss, per-token loss and every cached activation match TransformerLens within 1e-5"
        <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model()
            let tokens = expected.["tokens"]
            use run = model.RunWithCache(tokens)
            let logits, cache = run.Logits, run.Cache
            expectClose 1e-5 "logits" logits expected.["logits"]
            use loss = model.Loss(tokens)
            use lossPerToken = model.Loss(tokens, perToken = true)
            expectClose 1e-5 "loss_mean" loss expected.["loss_mean"]
            expectClose 1e-5 "loss_per_token" lossPerToken expected.["loss_per_token"]
            let names = oracle.HookNames "default"
            Expect.isGreaterThan names.Length 20 "the manifest lists the hooks"
            Expect.sequenceEqual (cache.Keys |> Seq.sort) (names |> Seq.sort)
                "the cache holds exactly TransformerLens's hook names"
            for n in names do expectClose 1e-5 n cache.[n] expected.[n]
            disposeAll expected

        testCase "use_attn_result: hook_result per head matches, and logits still match" <| fun () ->
            let expected = oracle.Expected "expected.safetensors"
            use model = oracle.Model(useAttnResult = true)
            use run = model.RunWithCache(expected.["tokens"])
            let logits, cache = run.Logits, run.Cache
            expectClose 1e-5 "logits (use_attn_result)" logits expected.["logits"]
            for n in oracle.HookNames "use_attn_result" do expectClose 1e-5 n cache.[n] expected.[n]
            disposeAll expected
    ]

[<Tests>]
let tests =
    testList "parity with TransformerLens" [
        parity "gpt2like"
        parity "attnonly"
    ]
