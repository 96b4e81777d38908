/// The config's enumerated fields as types (looked up once, TransformerLens's strings kept on disk) and the
/// hook point factory (one place for a hook's name, lookup and order).
module Lens.Tests.ConfigTypesTests

open System.Text.Json
open System.Text.Json.Nodes
open Expecto
open TorchSharp
open Lens
open Lens.Pretrained
open Lens.Tests.ParityTests

let private enumeratedFields =
    [ "normalization_type"; "positional_embedding_type"; "attention_dir"; "act_fn"; "attn_types" ]

/// The message of the ArgumentException (or the FormatException around it) that loading json throws.
let private loadError (json: JsonObject) =
    let mutable message = None
    Expect.throwsC (fun () -> HookedTransformerConfig.FromJson(json.ToJsonString(), "test config") |> ignore)
        (fun e -> message <- Some e.Message)
    message.Value

let private withField (o: Oracle) (field: string) (value: JsonNode) =
    let json = JsonNode.Parse(o.Manifest.GetProperty("config").GetRawText()).AsObject()
    json.[field] <- value
    json

/// The order in which a forward pass first reaches each hook point, with a no-op hook on every one.
let private firingOrder (model: HookedTransformer) (tokens: torch.Tensor) =
    let fired = System.Collections.Generic.List<string>()
    use _ =
        model.AddHook((fun _ -> true),
                      HookFunction(fun _ h -> (if not (fired.Contains h.Name) then fired.Add h.Name); null))
    use _ = model.Forward(tokens, ReturnType.Logits)
    List.ofSeq fired

[<Tests>]
let configTypesTests =
    testList "config types and hook factory" [
        testCase ("every oracle config reads into types and writes its enumerated fields back exactly as "
                  + "TransformerLens wrote them") <| fun () ->
            for name in [ "gpt2like"; "shortformer"; "gemma2like"; "attnonly"; "mixtrallike"; "qwen3like"; "padded" ] do
                let o = Oracle name
                let original = o.Manifest.GetProperty("config")
                let cfg = HookedTransformerConfig.FromJson(original.GetRawText(), name)
                use written = JsonDocument.Parse(cfg.ToJson())
                for field in enumeratedFields do
                    match original.TryGetProperty field with
                    | true, value ->
                        let compact (e: JsonElement) =
                            match JsonNode.Parse(e.GetRawText()) with null -> "null" | n -> n.ToJsonString()
                        Expect.equal (compact (written.RootElement.GetProperty field)) (compact value)
                            (sprintf "%s: %s round-trips" name field)
                    | _ -> ()
            let gemma = (Oracle "gemma2like").Config()
            Expect.equal (gemma.Normalization, gemma.PositionalEmbedding, gemma.AttentionDirection, gemma.Activation)
                (NormalizationKind.RMS, PositionalEmbeddingKind.Rotary, AttentionDirection.Causal,
                 ActivationFunction.GeluPytorchTanh) "gemma2like's kinds"
            Expect.sequenceEqual gemma.AttentionKinds [ AttentionKind.Global; AttentionKind.Local ]
                "gemma2like's attn_types"
            let shortformer = (Oracle "shortformer").Config()
            Expect.equal shortformer.PositionalEmbedding PositionalEmbeddingKind.Shortformer "shortformer"

        testCase ("setting the typed property writes TransformerLens's string, and the other way round; null "
                  + "normalization is None") <| fun () ->
            let cfg = (Oracle "gpt2like").Config()
            cfg.Normalization <- NormalizationKind.RMSPre
            cfg.Activation <- ActivationFunction.SoluLn
            cfg.PositionalEmbedding <- PositionalEmbeddingKind.Rotary
            cfg.AttentionDirection <- AttentionDirection.Bidirectional
            Expect.equal (cfg.NormalizationType, cfg.ActFn, cfg.PositionalEmbeddingType, cfg.AttentionDir)
                ("RMSPre", "solu_ln", "rotary", "bidirectional") "JSON strings follow the types"
            cfg.NormalizationType <- null
            cfg.ActFn <- "gelu_fast"
            Expect.equal (cfg.Normalization, cfg.Activation) (NormalizationKind.None, ActivationFunction.GeluFast)
                "types follow the strings"
            use written = JsonDocument.Parse(cfg.ToJson())
            Expect.equal (written.RootElement.GetProperty("normalization_type").ValueKind) JsonValueKind.Null
                "None is written as null"
            Expect.equal (written.RootElement.GetProperty("act_fn").GetString()) "gelu_fast" "act_fn written by name"

        testCase "a value Lens does not know is refused naming the field, the value and the accepted values"
        <| fun () ->
            let o = Oracle "gpt2like"
            let cases = [
                "act_fn", JsonValue.Create "swish" :> JsonNode, "\"swish\"",
                    "relu, gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, silu, solu_ln or solu"
                "normalization_type", JsonValue.Create "BatchNorm", "\"BatchNorm\"", "LN, LNPre, RMS, RMSPre or null"
                "positional_embedding_type", JsonValue.Create "alibi", "\"alibi\"", "standard, rotary or shortformer"
                "attention_dir", JsonValue.Create "sideways", "\"sideways\"", "causal or bidirectional"
                "attn_types", JsonArray(JsonValue.Create "global", JsonValue.Create "sliding"), "\"sliding\"",
                    "global or local" ]
            for field, value, shown, accepted in cases do
                let message = loadError (withField o field value)
                Expect.stringContains message "test config" (sprintf "%s: names the source" field)
                Expect.stringContains message (sprintf "'%s'" field) (sprintf "%s: names the field" field)
                Expect.stringContains message shown (sprintf "%s: names the value" field)
                Expect.stringContains message accepted (sprintf "%s: names the accepted values" field)

        testCase ("init_mode: TransformerLens's names as types; fresh weights refuse every mode but gpt2, and an "
                  + "unknown one by name") <| fun () ->
            let cfg = (Oracle "gpt2like").Config()
            cfg.InitMode <- "kaiming_normal"
            Expect.equal cfg.Initialization InitMode.KaimingNormal "kaiming_normal"
            cfg.Initialization <- InitMode.MuP
            Expect.equal cfg.InitMode "muP" "muP written back by TransformerLens's name"
            cfg.InitWeights <- true
            Expect.throwsC (fun () -> (new HookedTransformer(cfg)).Dispose())
                (fun e ->
                    Expect.stringContains e.Message "'init_mode' = \"muP\" is not supported by Lens for fresh weights"
                        "muP refused")
            cfg.InitMode <- "orthogonal"
            Expect.throwsC (fun () -> (new HookedTransformer(cfg)).Dispose())
                (fun e ->
                    Expect.stringContains e.Message ("'init_mode' = \"orthogonal\" is not supported by Lens: use gpt2, "
                                                     + "xavier_uniform") "unknown refused")
            cfg.InitWeights <- false
            use loaded = new HookedTransformer(cfg)
            Expect.equal loaded.Config.InitMode "orthogonal"
                "without fresh weights init_mode is metadata, kept as written"

        testCase ("hook_dict lists the hook points in the order a forward pass first reaches them (rotary, gated, q/k "
                  + "norms, post-norms)") <| fun () ->
            for name in [ "gpt2like"; "gemma2like"; "qwen3like"; "mixtrallike"; "attnonly" ] do
                let o = Oracle name
                use model = o.Model()
                use tokens = torch.tensor([| 1L; 5L; 2L; 7L |]).unsqueeze(0)
                let fired = firingOrder model tokens
                let listed = model.HookNames |> Seq.filter (fun n -> List.contains n fired) |> List.ofSeq
                Expect.sequenceEqual listed fired (sprintf "%s: hook_dict order is the forward order" name)
                Expect.isGreaterThan fired.Length 10 (sprintf "%s: hooks fired" name)
            use plain = (Oracle "gpt2like").Model()
            Expect.isFalse (plain.HookDict.ContainsKey "blocks.0.attn.hook_rot_q") "no rotary: no hook_rot_q"
            use rotary = (Oracle "qwen3like").Model()
            Expect.isTrue (rotary.HookDict.ContainsKey "blocks.0.attn.hook_rot_q") "rotary: hook_rot_q"

        testCase ("folding the norms rebuilds them in place: same hook names in the same order, the new norms' hook "
                  + "points") <| fun () ->
            use model = (Oracle "gpt2like").Model()
            let before = List.ofSeq model.HookNames
            model.ProcessWeights(WeightProcessingOptions())
            Expect.equal model.blocks.[0].ln1.Kind NormalizationKind.LNPre "ln1 is LNPre"
            Expect.sequenceEqual model.HookNames before "names and order unchanged"
            Expect.isTrue
                (obj.ReferenceEquals(model.HookDict.["blocks.0.ln1.hook_scale"], model.blocks.[0].ln1.HookScale))
                "the dictionary holds the new norm's hook point"

        testCase "the factory derives full names from the component's path and refuses a name made twice" <| fun () ->
            let hooks = HookPointFactory()
            let attn = hooks.Under("blocks.3").Under("attn")
            let q = attn.Create("hook_q")
            Expect.equal q.Name "blocks.3.attn.hook_q" "full name"
            Expect.equal q.Layer (System.Nullable 3) "layer from the path"
            attn.Create("hook_rot_q", listed = false) |> ignore
            Expect.sequenceEqual (hooks.Ordered |> Seq.map (fun h -> h.Name)) [ "blocks.3.attn.hook_q" ]
                "unlisted hook points are not recorded"
            Expect.throwsT<System.InvalidOperationException> (fun () -> attn.Create("hook_q") |> ignore) "made twice"
            Expect.throwsT<System.InvalidOperationException> (fun () ->
                hooks.Replacing("ln_final").Create("hook_scale") |> ignore) "replaces none"
    ]
