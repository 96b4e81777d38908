/// OLMoE (OlmoeForCausalLM) from a Hugging Face folder. TransformerLens 3.5.1 converts it
/// (convert_olmoe_weights) but its oracle fixtures have no OLMoE set, so a tiny random checkpoint is written
/// here in Hugging Face's layout and checked against a reference forward written independently from Hugging
/// Face's modeling_olmoe.py (float64, plain TorchSharp): q/k RMSNorm over the whole projection, top-k routing
/// with and without norm_topk_prob, no shared experts. Fields Lens cannot honour are refused, naming them.
module Lens.Tests.OlmoeTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.Pretrained
open Lens.Tests.TestSupport
open Lens.Tests.WeightProcessingTests
open Lens.Tests.ForwardOptionsTests
open Lens.Tests.ArchitectureTests

type Tensor = torch.Tensor

let private olmoeConfigText = """{
  "architectures": [ "OlmoeForCausalLM" ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "clip_qkv": null,
  "hidden_act": "silu",
  "hidden_size": 32,
  "initializer_range": 0.02,
  "intermediate_size": 24,
  "max_position_embeddings": 16,
  "model_type": "olmoe",
  "norm_topk_prob": false,
  "num_attention_heads": 4,
  "num_experts": 4,
  "num_experts_per_tok": 2,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "output_router_logits": false,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "router_aux_loss_coef": 0.01,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "vocab_size": 53
}"""

let private olmoeConfig (normTopkProb: bool) =
    if normTopkProb then
        olmoeConfigText.Replace("\"norm_topk_prob\": false", "\"norm_topk_prob\": true") else olmoeConfigText

let private experts, topK, dMlp = 4, 2, 24L

let private olmoeWeights () =
    let w = HfWeights 707UL
    let d, e, heads, kv = 32L, 8L, 4L, 2L
    w.Add("model.embed_tokens.weight", [ 53L; d ], 0.3)
    for l in 0..1 do
        let h = sprintf "model.layers.%d." l
        w.Add(h + "input_layernorm.weight", [ d ], 0.1, 1.0)
        w.Add(h + "self_attn.q_proj.weight", [ heads * e; d ], 0.3)
        w.Add(h + "self_attn.k_proj.weight", [ kv * e; d ], 0.3)
        w.Add(h + "self_attn.v_proj.weight", [ kv * e; d ], 0.3)
        w.Add(h + "self_attn.q_norm.weight", [ heads * e ], 0.2, 1.0)
        w.Add(h + "self_attn.k_norm.weight", [ kv * e ], 0.2, 1.0)
        w.Add(h + "self_attn.o_proj.weight", [ d; heads * e ], 0.2)
        w.Add(h + "post_attention_layernorm.weight", [ d ], 0.1, 1.0)
        w.Add(h + "mlp.gate.weight", [ int64 experts; d ], 0.5)
        for x in 0 .. experts - 1 do
            let p = sprintf "%smlp.experts.%d." h x
            w.Add(p + "gate_proj.weight", [ dMlp; d ], 0.3)
            w.Add(p + "up_proj.weight", [ dMlp; d ], 0.3)
            w.Add(p + "down_proj.weight", [ d; dMlp ], 0.3)
    w.Add("model.norm.weight", [ d ], 0.1, 1.0)
    w.Add("lm_head.weight", [ 53L; d ], 0.3)
    w

/// OlmoeSparseMoeBlock: router softmax over all experts in float32 (softmax(..., dtype=torch.float), whatever
/// the model's dtype), top-k, optionally renormalised, then cast back; each chosen expert's
/// down(silu(gate(x)) · up(x)) weighted and summed. Written per token and slot, as the loop reads.
let private sparseMoe (w: HfWeights) (h: string) (normTopkProb: bool) (x: Tensor) =
    let flat = x.reshape(-1L, x.shape.[2])
    let probs = (linear flat w.[h + "mlp.gate.weight"] None).to_type(torch.float32).softmax(1L)
    let struct (top, chosen) = probs.topk(topK, dim = -1)
    let weights = (if normTopkProb then top / top.sum(-1L, keepdim = true) else top).to_type(torch.float64)
    let expert x (t: Tensor) =
        let p = sprintf "%smlp.experts.%d." h x
        linear
            (torch.nn.functional.silu(linear t w.[p + "gate_proj.weight"] None) * linear t w.[p + "up_proj.weight"]
                None) w.[p + "down_proj.weight"] None
    let rows =
        [| for token in 0L .. flat.shape.[0] - 1L ->
            let t = flat.narrow(0L, token, 1L)
            [ for slot in 0L .. int64 topK - 1L ->
                expert (int (chosen.[token, slot].item<int64>())) t * weights.[token, slot] ]
            |> List.reduce (+) |]
    torch.cat(rows, 0L).view(x.shape)

/// OlmoeForCausalLM: RMSNorm (x · rsqrt(mean x² + eps) · w); q_norm over all 4 heads' queries (32) and
/// k_norm over both kv heads' keys (16) before the heads are split; rotate-half rotary over the whole
/// head; GQA (repeat_kv); scores / sqrt(head_dim); the sparse MoE; final norm and lm_head.
let private olmoeReference (normTopkProb: bool) (w: HfWeights) (tokens: Tensor) =
    use scope = torch.NewDisposeScope()
    let eps = 1e-5
    let mutable x = embed w.["model.embed_tokens.weight"] tokens
    let residuals = ResizeArray()
    for l in 0..1 do
        let h = sprintf "model.layers.%d." l
        let a = h + "self_attn."
        let n = rmsNorm x w.[h + "input_layernorm.weight"] eps
        let q = splitHeads (rmsNorm (linear n w.[a + "q_proj.weight"] None) w.[a + "q_norm.weight"] eps) 4L
        let k = splitHeads (rmsNorm (linear n w.[a + "k_proj.weight"] None) w.[a + "k_norm.weight"] eps) 2L
        let v = splitHeads (linear n w.[a + "v_proj.weight"] None) 2L
        let z = attend (rotary q 8L 10000.0) (repeatKv (rotary k 8L 10000.0) 2L) (repeatKv v 2L) (1.0 / sqrt 8.0) causal
        x <- x + linear (mergeHeads z) w.[a + "o_proj.weight"] None
        x <- x + sparseMoe w h normTopkProb (rmsNorm x w.[h + "post_attention_layernorm.weight"] eps)
        residuals.Add(x.to_type(torch.float64).DetachFromDisposeScope())
    let logits = linear (rmsNorm x w.["model.norm.weight"] eps) w.["lm_head.weight"] None
    logits.DetachFromDisposeScope(), List.ofSeq residuals

let private withFolder (config: string) (w: HfWeights) (body: string -> unit) =
    let dir = tempDir "olmoe"
    try
        writeHubFolder dir config w.Tensors
        body dir
    finally Directory.Delete(dir, true)

let private matchesReference (normTopkProb: bool) =
    let w = olmoeWeights ()
    withFolder (olmoeConfig normTopkProb) w (fun dir ->
        use tokens = randomTokens ()
        let logits, residuals = olmoeReference normTopkProb w tokens
        use model = HookedTransformer.FromPretrainedNoProcessing(dir)
        use run = model.RunWithCache(tokens)
        let mutable worst = relativeError "OLMoE logits" run.Logits logits
        residuals |> List.iteri (fun l r ->
            worst <-
                max worst
                    (relativeError (sprintf "OLMoE blocks.%d.hook_resid_post" l)
                        run.Cache.[sprintf "blocks.%d.hook_resid_post" l] r))
        printfn "[parity] OLMoE (norm_topk_prob %b) vs reference forward: max relative error %g (logits and resid_post)"
            normTopkProb worst
        Expect.isLessThan worst 1e-5 "within 1e-5 relative"
        // Unprocessed, float64, and with weight processing (log-probs) against the same reference.
        checkAgainstReference "OLMoE" dir (fun t ->
            let l, rs = olmoeReference normTopkProb w t
            for r in rs do r.Dispose()
            l)
        logits.Dispose()
        for r in residuals do r.Dispose())

let private refusedWith (config: string) (needle: string) =
    withFolder config (olmoeWeights ()) (fun dir ->
        let m = messageOf<CheckpointException> (fun () -> HubLayoutLoader.Load(dir) |> ignore)
        Expect.stringContains m needle "names the field")

[<Tests>]
let tests =
    testList "OLMoE from a Hugging Face folder" [
        testCase "the config converts as TransformerLens's OlmoeForCausalLM mapping" <| fun () ->
            withFolder (olmoeConfig false) (olmoeWeights ()) (fun dir ->
                let cfg = HubLayoutLoader.ReadConfig dir
                Expect.equal cfg.OriginalArchitecture "OlmoeForCausalLM"
                    "original_architecture selects the whole-projection q/k norm"
                Expect.equal (cfg.DHead, cfg.NKeyValueHeads, cfg.RotaryDim) (8, Nullable 2, Nullable 8)
                    "d_head = hidden_size / heads, GQA, full rotary"
                Expect.equal (cfg.NumExperts, cfg.ExpertsPerToken, cfg.NormTopkProb) (Nullable 4, Nullable 2, false)
                    "experts, top-k, norm_topk_prob read from the config"
                Expect.isFalse cfg.UseQkNorm "not Qwen3's per-head norm"
                Expect.equal cfg.NCtx 16 "n_ctx = max_position_embeddings")

        testCase "norm_topk_prob false (OLMoE-1B-7B's) matches the reference forward"
        <| fun () -> matchesReference false

        testCase "norm_topk_prob true matches the reference forward, and the renormalisation moves the logits"
        <| fun () ->
            matchesReference true
            let w = olmoeWeights ()
            use tokens = randomTokens ()
            let plain, r1 = olmoeReference false w tokens
            let renormalised, r2 = olmoeReference true w tokens
            Expect.isGreaterThan (maxAbsDiff plain renormalised) 1e-3 "the reference tells the two routings apart"
            for t in plain :: renormalised :: r1 @ r2 do t.Dispose()

        testCase "hook points: q_norm/k_norm over the whole projection ([b, p, 1] scales) and the MoE routing hooks"
        <| fun () ->
            withFolder (olmoeConfig false) (olmoeWeights ()) (fun dir ->
                use model = HookedTransformer.FromPretrainedNoProcessing(dir)
                use tokens = randomTokens ()
                use run = model.RunWithCache(tokens)
                let shape (n: string) = List.ofArray run.Cache.[n].shape
                Expect.equal (shape "blocks.0.attn.q_norm.hook_scale") [ 2L; 10L; 1L ] "one q scale per position"
                Expect.equal (shape "blocks.0.attn.q_norm.hook_normalized") [ 2L; 10L; 32L ] "all heads' queries"
                Expect.equal (shape "blocks.1.attn.k_norm.hook_normalized") [ 2L; 10L; 16L ] "both kv heads' keys"
                Expect.equal (shape "blocks.0.mlp.hook_expert_weights") [ 20L; 4L ] "router softmax over every expert"
                Expect.equal (shape "blocks.0.mlp.hook_expert_indices") [ 20L; 2L ] "top-2 experts per token"
                let param n = List.ofArray (model.StateDict() |> Seq.find (fun kv -> kv.Key = n)).Value.shape
                Expect.equal (param "blocks.0.attn.q_norm.w") [ 32L ] "attn.q_norm.w [d_model]"
                Expect.equal (param "blocks.0.attn.k_norm.w") [ 16L ] "attn.k_norm.w [kv_heads·d_head]"
                Expect.equal (param "blocks.0.mlp.experts.3.W_out.weight") [ 32L; 24L ]
                    "expert W_out as nn.Linear [out, in]")

        testCase ("saved as a TransformerLens-native folder it reloads to the same logits (original_architecture "
                  + "selects the norm)") <| fun () ->
            withFolder (olmoeConfig false) (olmoeWeights ()) (fun dir ->
                use model = HookedTransformer.FromPretrainedNoProcessing(dir)
                use tokens = randomTokens ()
                use before = model.Forward(tokens)
                let native = tempDir "olmoe-native"
                try
                    model.Save native
                    use reloaded = HookedTransformer.Load native
                    Expect.equal reloaded.Config.OriginalArchitecture "OlmoeForCausalLM"
                        "original_architecture is written and read back"
                    use after = reloaded.Forward(tokens)
                    Expect.equal (maxAbsDiff before after) 0.0 "the same computation"
                finally Directory.Delete(native, true))

        testCase ("lens cache on the Hugging Face folder writes the whole-projection q_norm hook and the reference's "
                  + "log-probs") <| fun () ->
            let w = olmoeWeights ()
            withFolder (olmoeConfig false) w (fun dir ->
                use tokens = randomTokens ()
                let logits, residuals = olmoeReference false w tokens
                let rows =
                    [ for r in 0L .. tokens.shape.[0] - 1L ->
                        "[" + String.Join(",", tokens.[r].data<int64>().ToArray()) + "]" ]
                let out = Path.Combine(dir, "acts.safetensors")
                let r =
                    Processes.lens [ "cache"; dir; "--tokens"; "[" + String.Join(",", rows) + "]"; "--names";
                                     "blocks.*.attn.q_norm.hook_scale"; "--out"; out ]
                Expect.equal r.ExitCode 0 (r.Stdout + r.Stderr)
                use written = Lens.IO.SafetensorsFile.Open out
                use cached = written.Load "logits"
                // lens cache processes the weights (center_unembed moves each position's logits by a constant):
                // log-probs.
                use a = logSoftmax cached
                use b = logSoftmax logits
                Expect.isLessThan (relativeError "lens cache log-probs" a b) 1e-5 "the reference's log-probabilities"
                use scale = written.Load "blocks.1.attn.q_norm.hook_scale"
                Expect.equal (List.ofArray scale.shape) [ 2L; 10L; 1L ] "one scale per position"
                for t in logits :: residuals do t.Dispose())

        testCase "clip_qkv, attention biases and rope scaling are refused naming the field" <| fun () ->
            refusedWith ((olmoeConfig false).Replace("\"clip_qkv\": null", "\"clip_qkv\": 8.0")) "clip_qkv"
            refusedWith ((olmoeConfig false).Replace("\"attention_bias\": false", "\"attention_bias\": true"))
                "attention_bias"
            refusedWith ((olmoeConfig false).Replace("\"rope_scaling\": null",
                                                     "\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2.0}"))
                "rope_scaling"

        testCase "a TransformerLens-native config naming OLMo 2 or OLMo 3 is refused naming original_architecture"
        <| fun () ->
            for arch in [ "Olmo2ForCausalLM"; "Olmo3ForCausalLM" ] do
                let json = sprintf """{"d_model": 32, "d_head": 8, "n_heads": 4, "n_layers": 1, "n_ctx": 16, "d_vocab": 53, "act_fn": "silu", "normalization_type": "RMS", "original_architecture": "%s"}""" arch
                let load () = HookedTransformerConfig.FromJson(json, "test config") |> ignore
                let m = messageOf<ArgumentException> load
                Expect.stringContains m "original_architecture" (arch + " is refused naming the field")
    ]
