/// Mixture of experts (Mixtral) against TransformerLens's mixtrallike oracle: every hook (routing and
/// per-expert ones with their variable token counts), logits and loss, through the API and `lens cache`;
/// norm_topk_prob; and a Hugging Face Mixtral folder, built here from the oracle's weights by the inverse
/// of TransformerLens's convert_mixtral_weights (the fixture ships no HF folder), which must give Hugging
/// Face's renormalised numbers (norm_topk_prob_true.*).
module Lens.Tests.MixtureOfExpertsTests

open System
open System.Collections.Generic
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Pretrained
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.WeightProcessingTests
open Lens.Tests.ForwardOptionsTests

let private oracle = lazy (Oracle "mixtrallike")

/// The largest relative error seen per comparison group (printed for the closing figures).
let private worst = Collections.Concurrent.ConcurrentDictionary<string, float>()
let private worstRelative (set: string) = worst.GetOrAdd(set, 0.0)

/// Relative to the expected tensor's largest magnitude, within 1e-5.
let private expectRel (set: string) (what: string) (actual: torch.Tensor) (expected: torch.Tensor) =
    let r = relativeError what actual expected
    worst.AddOrUpdate(set, r, fun _ old -> max old r) |> ignore
    if r > 1e-5 then failtestf "%s: relative error %g exceeds 1e-5" what r

/// The oracle's weights loaded into a model of its config with norm_topk_prob set as given.
let private modelWith (normTopk: bool) (useAttnResult: bool) =
    let o = oracle.Value
    let cfg = o.Config(useAttnResult)
    cfg.NormTopkProb <- normTopk
    let model = new HookedTransformer(cfg)
    use f = SafetensorsFile.Open(Path.Combine(o.Dir, "weights.safetensors"))
    model.LoadStateDict(f.Names |> Seq.map (fun n -> KeyValuePair(n, f.Load n)), "weights")
    model

let private mixtralConfig = """{
  "architectures": [
    "MixtralForCausalLM"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "hidden_act": "silu",
  "hidden_size": 48,
  "initializer_range": 0.02,
  "intermediate_size": 64,
  "max_position_embeddings": 32,
  "model_type": "mixtral",
  "num_attention_heads": 4,
  "num_experts_per_tok": 2,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "num_local_experts": 4,
  "output_router_logits": false,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "router_aux_loss_coef": 0.02,
  "router_jitter_noise": 0.0,
  "sliding_window": null,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "vocab_size": 101
}"""

/// TransformerLens's names → Hugging Face's Mixtral names: the inverse of convert_mixtral_weights
/// ("(n h) m → n m h" undone for q/k/v, "m (n h) → n h m" for o_proj; w1 = W_gate, w3 = W_in, w2 = W_out).
let private hfFromTl (tl: IDictionary<string, torch.Tensor>) =
    let hf = Dictionary<string, torch.Tensor>()
    let put (name: string) (t: torch.Tensor) = hf.[name] <- t.contiguous()
    let inputHeads (w: torch.Tensor) = w.permute(0L, 2L, 1L).reshape(-1L, w.shape.[1])
    put "model.embed_tokens.weight" tl.["embed.W_E"]
    for l in 0..1 do
        let b, h = sprintf "blocks.%d." l, sprintf "model.layers.%d." l
        put (h + "input_layernorm.weight") tl.[b + "ln1.w"]
        put (h + "self_attn.q_proj.weight") (inputHeads tl.[b + "attn.W_Q"])
        put (h + "self_attn.k_proj.weight") (inputHeads tl.[b + "attn._W_K"])
        put (h + "self_attn.v_proj.weight") (inputHeads tl.[b + "attn._W_V"])
        let wO = tl.[b + "attn.W_O"]
        put (h + "self_attn.o_proj.weight") (wO.permute(2L, 0L, 1L).reshape(wO.shape.[2], -1L))
        put (h + "post_attention_layernorm.weight") tl.[b + "ln2.w"]
        put (h + "block_sparse_moe.gate.weight") tl.[b + "mlp.W_gate.weight"]
        for e in 0..3 do
            let x, m = sprintf "%sblock_sparse_moe.experts.%d." h e, sprintf "%smlp.experts.%d." b e
            put (x + "w1.weight") tl.[m + "W_gate.weight"]
            put (x + "w3.weight") tl.[m + "W_in.weight"]
            put (x + "w2.weight") tl.[m + "W_out.weight"]
    put "model.norm.weight" tl.["ln_final.w"]
    put "lm_head.weight" (tl.["unembed.W_U"].t())
    hf

let private withHfFolder (config: string) (body: string -> unit) =
    let o = oracle.Value
    let tl = SafetensorsFile.LoadAll(Path.Combine(o.Dir, "weights.safetensors"))
    let dir = ArchitectureTests.tempDir "mixtral-hf"
    try
        use bU = tl.["unembed.b_U"].abs().max()
        Expect.equal (bU.item<float32>()) 0.0f "the fixture's b_U is zero (Mixtral's lm_head has no bias)"
        ArchitectureTests.writeHubFolder dir config (hfFromTl tl)
        body dir
    finally
        Directory.Delete(dir, true)
        for t in tl.Values do t.Dispose()

/// An independent forward written from Hugging Face's modeling_mixtral.py (float64): Mistral attention
/// (RMSNorm, rotate-half rotary over the whole head with rope_theta, grouped-query heads via repeat_kv)
/// and MixtralSparseMoeBlock: softmax over all experts of gate(x), top-2, weights renormalised to sum
/// to 1, out = Σ w · w2(silu(w1 x) · w3 x). Computed densely (every expert on every token, then picked),
/// unlike TransformerLens's per-expert gathering.
let private mixtralReference (hf: IDictionary<string, torch.Tensor>) (tokens: torch.Tensor) =
    use scope = torch.NewDisposeScope()
    let w (name: string) = hf.[name].to_type(torch.float64)
    let mutable x = ArchitectureTests.embed (w "model.embed_tokens.weight") tokens
    for l in 0..1 do
        let h = sprintf "model.layers.%d." l
        let a = h + "self_attn."
        let n = ArchitectureTests.rmsNorm x (w (h + "input_layernorm.weight")) 1e-5
        let q = ArchitectureTests.splitHeads (ArchitectureTests.linear n (w (a + "q_proj.weight")) None) 4L
        let k = ArchitectureTests.splitHeads (ArchitectureTests.linear n (w (a + "k_proj.weight")) None) 2L
        let v = ArchitectureTests.splitHeads (ArchitectureTests.linear n (w (a + "v_proj.weight")) None) 2L
        let z =
            ArchitectureTests.attend (ArchitectureTests.rotary q 12L 1e6)
                (ArchitectureTests.repeatKv (ArchitectureTests.rotary k 12L 1e6) 2L)
                (ArchitectureTests.repeatKv v 2L) (1.0 / sqrt 12.0) ArchitectureTests.causal
        x <- x + ArchitectureTests.linear (ArchitectureTests.mergeHeads z) (w (a + "o_proj.weight")) None
        let n2 = ArchitectureTests.rmsNorm x (w (h + "post_attention_layernorm.weight")) 1e-5
        let flat = n2.reshape(-1L, 48L)
        let routing = ArchitectureTests.linear flat (w (h + "block_sparse_moe.gate.weight")) None |> fun t ->
            t.softmax(1L)
        let struct (top, chosen) = routing.topk(2, dim = -1)
        let top = top / top.sum(-1L, keepdim = true)
        let outputs =
            torch.stack(
                [| for e in 0..3 ->
                    let x' = sprintf "%sblock_sparse_moe.experts.%d." h e
                    let hidden =
                        torch.nn.functional.silu(ArchitectureTests.linear flat (w (x' + "w1.weight")) None)
                        * ArchitectureTests.linear flat (w (x' + "w3.weight")) None
                    ArchitectureTests.linear hidden (w (x' + "w2.weight")) None |], 1L)   // [tokens, expert, d]
        let picked = outputs.gather(1L, chosen.unsqueeze(-1L).expand(-1L, -1L, 48L))   // [tokens, 2, d]
        x <- x + (picked * top.unsqueeze(-1L)).sum(1L).view(x.shape)
    let final = ArchitectureTests.rmsNorm x (w "model.norm.weight") 1e-5
    (ArchitectureTests.linear final (w "lm_head.weight") None).DetachFromDisposeScope()

[<Tests>]
let tests =
    testList "mixture of experts" [
        testCase ("mixtrallike: every hook (routing, per-expert with variable token counts), logits and loss match "
                  + "TransformerLens within 1e-5 relative") <| fun () ->
            let o = oracle.Value
            let expected = o.Expected "expected.safetensors"
            use model = modelWith false false
            Expect.equal model.Config.NParams
                (Nullable (o.Manifest.GetProperty("config").GetProperty("n_params").GetInt64()))
                "n_params as TransformerLens counts experts and router"
            let tokens = expected.["tokens"]
            use run = model.RunWithCache(tokens, ReturnType.Both, lossPerToken = true)
            expectRel "mixtrallike" "logits" run.Logits expected.["logits"]
            expectRel "mixtrallike" "loss_per_token" run.Loss expected.["loss_per_token"]
            use loss = model.Loss(tokens)
            expectRel "mixtrallike" "loss_mean" loss expected.["loss_mean"]
            let names = o.HookNames "default"
            Expect.equal names.Length 67 "the manifest's 67 hooks"
            Expect.sequenceEqual (run.Cache.Keys |> Seq.sort) (names |> Seq.sort)
                "the cache holds exactly TransformerLens's hooks"
            for n in names do
                if n.EndsWith "hook_expert_indices" then
                    Expect.equal run.Cache.[n].dtype torch.int64 (n + " is int64")
                    Expect.equal (maxAbsDiff run.Cache.[n] expected.[n]) 0.0
                        (n + ": the same experts in the same order")
                else expectRel "mixtrallike" n run.Cache.[n] expected.[n]
            Expect.sequenceEqual run.Cache.["blocks.0.mlp.experts.3.hook_post"].shape [| 23L; 64L |]
                "expert 3 of layer 0 saw 23 tokens"
            Expect.sequenceEqual run.Cache.["blocks.0.mlp.hook_expert_weights"].shape [| 24L; 4L |]
                "routing weights over flattened tokens"
            use fused = model.Forward(tokens)
            expectRel "mixtrallike" "logits (no hooks)" fused expected.["logits"]
            eprintfn "[parity] mixtrallike: max relative error %g" (worstRelative "mixtrallike")
            disposeAll expected

        testCase "mixtrallike with use_attn_result: hook_result matches" <| fun () ->
            let o = oracle.Value
            let expected = o.Expected "expected.safetensors"
            use model = modelWith false true
            use run = model.RunWithCache(expected.["tokens"])
            for n in o.HookNames "use_attn_result" do expectRel "mixtrallike" n run.Cache.[n] expected.[n]
            disposeAll expected

        testCase "norm_topk_prob true renormalises the top-k weights: logits and loss equal norm_topk_prob_true.*"
        <| fun () ->
            let expected = oracle.Value.Expected "expected.safetensors"
            use model = modelWith true false
            use logits = model.Forward(expected.["tokens"])
            expectRel "mixtrallike" "norm_topk_prob_true.logits" logits expected.["norm_topk_prob_true.logits"]
            use loss = model.Loss(expected.["tokens"])
            expectRel "mixtrallike" "norm_topk_prob_true.loss_mean" loss expected.["norm_topk_prob_true.loss_mean"]
            Expect.isGreaterThan (maxAbsDiff logits expected.["logits"]) 0.1 "the two routings are told apart"
            disposeAll expected

        testCase ("parameters keep TransformerLens's names (nn.Linear weights under mlp.W_gate.weight, "
                  + "mlp.experts.{e}.W_in.weight), also after a move to float64") <| fun () ->
            use model = modelWith false false
            use f = SafetensorsFile.Open(Path.Combine(oracle.Value.Dir, "weights.safetensors"))
            Expect.sequenceEqual (model.StateDict() |> Seq.map (fun kv -> kv.Key) |> Seq.sort) (f.Names |> Seq.sort)
                "the same state dict names"
            let actual = model.StateDict() |> Seq.sumBy (fun kv -> float (kv.Value.numel() * 4L))
            let estimate = MemoryEstimate.ParameterBytes model.Config
            Expect.isLessThan (abs (estimate - actual) / actual) 0.02
                (sprintf "the memory estimate counts every expert (%g vs %g bytes)" estimate actual)
            // Moving the model (dtype, device) keeps the experts registered under "mlp".
            model.To(dtype = Nullable torch.float64) |> ignore
            Expect.equal (model.StateDict() |> Seq.filter (fun kv -> kv.Value.dtype <> torch.float64) |> Seq.length) 0
                "every parameter moved to float64"
            let expected = oracle.Value.Expected "expected.safetensors"
            use logits = model.Forward(expected.["tokens"])
            expectRel "mixtrallike" "float64 logits" logits expected.["logits"]
            disposeAll expected

        testCase "lens cache on a saved mixture-of-experts checkpoint writes every hook equal to the oracle"
        <| fun () ->
            let o = oracle.Value
            use model = modelWith false false
            let dir = ArchitectureTests.tempDir "moe-save"
            try
                model.Save dir
                use reloaded = HookedTransformer.Load(dir)
                Expect.equal reloaded.Config.NumExperts (Nullable 4) "num_experts round-trips"
                let out = Path.Combine(Path.GetTempPath(), Path.GetFileName dir + "-acts.safetensors")
                let r =
                    Processes.lens [ "cache"; dir; "--tokens";
                                     "[[47,80,58,68,95,90,69,54,68,54,98,21],[2,25,85,18,81,90,86,64,52,79,52,5]]";
                                     "--out"; out ]
                Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
                let expected = o.Expected "expected.safetensors"
                use written = SafetensorsFile.Open out
                for n in o.HookNames "default" @ [ "logits" ] do
                    use t = written.Load n
                    if n.EndsWith "hook_expert_indices" then Expect.equal (maxAbsDiff t expected.[n]) 0.0 n
                    else expectRel "mixtrallike" ("lens cache " + n) t expected.[n]
                disposeAll expected
                File.Delete out
            finally Directory.Delete(dir, true)

        testCase ("a Hugging Face Mixtral folder converts and gives Hugging Face's renormalised routing "
                  + "(norm_topk_prob_true.*), unprocessed and processed") <| fun () ->
            withHfFolder mixtralConfig (fun dir ->
                let cfg = HubLayoutLoader.ReadConfig(dir)
                Expect.isTrue cfg.NormTopkProb "HF's Mixtral renormalises the top-k weights"
                Expect.equal (cfg.NumExperts, cfg.ExpertsPerToken) (Nullable 4, Nullable 2)
                    "num_local_experts, num_experts_per_tok"
                Expect.equal cfg.NKeyValueHeads (Nullable 2) "grouped-query heads"
                let expected = oracle.Value.Expected "expected.safetensors"
                let tokens = expected.["tokens"]
                use raw = HookedTransformer.FromPretrainedNoProcessing(dir)
                use run = raw.RunWithCache(tokens, ReturnType.Both)
                expectRel "mixtral-hf" "logits vs norm_topk_prob_true.logits" run.Logits
                    expected.["norm_topk_prob_true.logits"]
                expectRel "mixtral-hf" "loss vs norm_topk_prob_true.loss_mean" run.Loss
                    expected.["norm_topk_prob_true.loss_mean"]
                // Routing happens before renormalisation: the routing hooks equal TransformerLens's.
                for n in [ "blocks.0.mlp.hook_expert_weights"; "blocks.0.attn.hook_pattern";
                           "blocks.0.mlp.experts.1.hook_post" ] do
                    expectRel "mixtral-hf" n run.Cache.[n] expected.[n]
                use processed = HookedTransformer.FromPretrained(dir)
                Expect.equal processed.Config.NormalizationType "RMS"
                    "fold_ln is skipped for mixtures of experts, as TransformerLens does"
                use processedLogits = processed.Forward(tokens)
                use a = logSoftmax processedLogits
                use b = logSoftmax expected.["norm_topk_prob_true.logits"]
                expectRel "mixtral-hf" "processed log-probs" a b
                eprintfn "[parity] mixtral-hf vs norm_topk_prob_true: max relative error %g"
                    (worstRelative "mixtral-hf")
                disposeAll expected)

        testCase ("an independent forward from Hugging Face's Mixtral code agrees with norm_topk_prob_true.logits and "
                  + "with Lens's load of the folder") <| fun () ->
            let o = oracle.Value
            let tl = SafetensorsFile.LoadAll(Path.Combine(o.Dir, "weights.safetensors"))
            let hf = hfFromTl tl
            let expected = o.Expected "expected.safetensors"
            use reference = mixtralReference hf expected.["tokens"]
            expectRel "mixtral-reference" "TransformerLens with norm_topk_prob vs HF reference"
                expected.["norm_topk_prob_true.logits"] reference
            Expect.isGreaterThan (maxAbsDiff reference expected.["logits"]) 0.1
                "TransformerLens's default (no renormalisation) is not Hugging Face's Mixtral"
            withHfFolder mixtralConfig (fun dir ->
                use model =
                    HubLayoutLoader.Load(dir, LoadOptions(ProcessWeights = false, Dtype = Nullable torch.float64))
                use logits = model.Forward(expected.["tokens"])
                expectRel "mixtral-reference" "Lens (float64) vs HF reference" logits reference)
            eprintfn
                "[parity] Mixtral HF reference forward vs TransformerLens norm_topk_prob_true / Lens: max relative \
                 error %g" (worstRelative "mixtral-reference")
            disposeAll expected
            for t in tl.Values do t.Dispose()

        testCase "Mixtral: rope_scaling is refused naming the field; num_experts without experts_per_token is refused"
        <| fun () ->
            withHfFolder (mixtralConfig.Replace("\"rope_theta\": 1000000.0,",
                                                ("\"rope_theta\": 1000000.0,\n"
                                                 + "  \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0},")))
                (fun dir ->
                let m = messageOf<CheckpointException> (fun () -> HubLayoutLoader.Load(dir) |> ignore)
                Expect.stringContains m "rope_scaling" "names the field"
                Expect.stringContains m "yarn" "names the value")
            let json =
                Text.Json.Nodes.JsonNode.Parse(oracle.Value.Manifest.GetProperty("config").GetRawText()).AsObject()
            json.["experts_per_token"] <- null
            let m =
                messageOf<ArgumentException> (fun () ->
                    HookedTransformerConfig.FromJson(json.ToJsonString(), "t") |> ignore)
            Expect.stringContains m "experts_per_token" "names the missing field"
    ]
