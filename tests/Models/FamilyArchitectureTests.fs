/// Phi-3, GPT-J and OPT from Hugging Face folders: tiny random checkpoints written here in each
/// architecture's own layout, checked against reference forwards written independently from Hugging
/// Face's modelling code (modeling_phi3.py, modeling_gptj.py, modeling_opt.py), logits and each block's
/// residual output within 1e-5 relative; configurations Lens cannot compute are refused naming the field.
module Lens.Tests.FamilyArchitectureTests

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

/// A reference forward's logits and the residual stream after each block.
type Reference = { Logits: Tensor; Residuals: Tensor list }

/// Logits (1e-5 relative, unprocessed; float64; processed log-probs) and blocks.{l}.hook_resid_post.
let private checkFamily (label: string) (config: string) (w: HfWeights) (reference: HfWeights -> Tensor -> Reference)
    (checkConfig: HookedTransformerConfig -> unit) =
    let dir = tempDir "family"
    try
        writeHubFolder dir config w.Tensors
        checkConfig (HubLayoutLoader.ReadConfig dir)
        use tokens = randomTokens ()
        let expected = reference w tokens
        use model = HookedTransformer.FromPretrainedNoProcessing(dir)
        use run = model.RunWithCache(tokens)
        let mutable worst = relativeError (label + " logits") run.Logits expected.Logits
        expected.Residuals |> List.iteri (fun l r ->
            worst <-
                max worst
                    (relativeError (sprintf "%s blocks.%d.hook_resid_post" label l)
                        run.Cache.[sprintf "blocks.%d.hook_resid_post" l] r))
        printfn "[parity] %s vs reference forward: max relative error %g (logits and resid_post)" label worst
        Expect.isLessThan worst 1e-5 (label + ": within 1e-5 relative")
        checkAgainstReference label dir (fun t -> (reference w t).Logits)
        expected.Logits.Dispose()
        for r in expected.Residuals do r.Dispose()
    finally Directory.Delete(dir, true)

let private refusedWith (config: string) (w: HfWeights) (needle: string) =
    let dir = tempDir "family-refused"
    try
        writeHubFolder dir config w.Tensors
        let m = messageOf<CheckpointException> (fun () -> HubLayoutLoader.Load(dir) |> ignore)
        Expect.stringContains m needle "names the field"
    finally Directory.Delete(dir, true)

let private keep (t: Tensor) = t.to_type(torch.float64).DetachFromDisposeScope()

/// Rotary with adjacent pairs (GPT-J's rotate_every_two, sin/cos repeat_interleave'd) on the first rotDim dims.
let private rotaryAdjacent (x: Tensor) (rotDim: int64) (theta: float) =
    let p = x.shape.[2]
    let invFreq = torch.tensor(standardInvFreq rotDim theta, dtype = torch.float64)
    let angles = torch.outer(torch.arange(p, dtype = torch.float64), invFreq)
    let sin, cos = angles.sin().repeat_interleave(2L, -1L), angles.cos().repeat_interleave(2L, -1L)
    let xr, rest = x.narrow(-1L, 0L, rotDim), x.narrow(-1L, rotDim, x.shape.[3] - rotDim)
    let even = xr.index_select(-1L, torch.arange(0L, rotDim, 2L))
    let odd = xr.index_select(-1L, torch.arange(1L, rotDim, 2L))
    let rotated = torch.stack([| odd.neg(); even |], -1L).flatten(-2L)
    torch.cat([| xr * cos + rotated * sin; rest |], -1L)

// ---- Phi-3 ----------------------------------------------------------------------------------------

let phi3Config = """{
  "architectures": [
    "Phi3ForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "embd_pdrop": 0.0,
  "eos_token_id": 32000,
  "hidden_act": "silu",
  "hidden_size": 32,
  "initializer_range": 0.02,
  "intermediate_size": 48,
  "max_position_embeddings": 16,
  "model_type": "phi3",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "original_max_position_embeddings": 16,
  "pad_token_id": 32000,
  "partial_rotary_factor": 0.5,
  "resid_pdrop": 0.0,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "sliding_window": 4,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "vocab_size": 53
}"""

let phi3Weights () =
    let w = HfWeights 404UL
    let d, e, f, heads, kv = 32L, 8L, 48L, 4L, 2L
    w.Add("model.embed_tokens.weight", [ 53L; d ], 0.3)
    for l in 0..1 do
        let h = sprintf "model.layers.%d." l
        w.Add(h + "input_layernorm.weight", [ d ], 0.1, 1.0)
        w.Add(h + "self_attn.qkv_proj.weight", [ (heads + 2L * kv) * e; d ], 0.25)
        w.Add(h + "self_attn.o_proj.weight", [ d; heads * e ], 0.2)
        w.Add(h + "post_attention_layernorm.weight", [ d ], 0.1, 1.0)
        w.Add(h + "mlp.gate_up_proj.weight", [ 2L * f; d ], 0.3)
        w.Add(h + "mlp.down_proj.weight", [ d; f ], 0.2)
    w.Add("model.norm.weight", [ d ], 0.1, 1.0)
    w.Add("lm_head.weight", [ 53L; d ], 0.3)
    w

/// Phi3ForCausalLM: RMSNorm; qkv_proj rows [q (4 heads) | k (2) | v (2)]; rotate-half rotary on the first
/// partial_rotary_factor·head_dim = 4 dims; GQA (repeat_kv); sliding window 4 (key j visible from i iff
/// i - 4 < j ≤ i); gate_up_proj rows [gate | up], down(up · silu(gate)).
let phi3Reference (w: HfWeights) (tokens: Tensor) =
    use scope = torch.NewDisposeScope()
    let mutable x = embed w.["model.embed_tokens.weight"] tokens
    let residuals = ResizeArray()
    for l in 0..1 do
        let h = sprintf "model.layers.%d." l
        let n = rmsNorm x w.[h + "input_layernorm.weight"] 1e-5
        let qkv = linear n w.[h + "self_attn.qkv_proj.weight"] None
        let q = splitHeads (qkv.narrow(-1L, 0L, 32L)) 4L
        let k = splitHeads (qkv.narrow(-1L, 32L, 16L)) 2L
        let v = splitHeads (qkv.narrow(-1L, 48L, 16L)) 2L
        let window i j = j <= i && i - j < 4L
        let z = attend (rotary q 4L 10000.0) (repeatKv (rotary k 4L 10000.0) 2L) (repeatKv v 2L) (1.0 / sqrt 8.0) window
        x <- x + linear (mergeHeads z) w.[h + "self_attn.o_proj.weight"] None
        let n2 = rmsNorm x w.[h + "post_attention_layernorm.weight"] 1e-5
        let gateUp = linear n2 w.[h + "mlp.gate_up_proj.weight"] None
        let gate, up = gateUp.narrow(-1L, 0L, 48L), gateUp.narrow(-1L, 48L, 48L)
        x <- x + linear (up * torch.nn.functional.silu(gate)) w.[h + "mlp.down_proj.weight"] None
        residuals.Add(keep x)
    let logits = linear (rmsNorm x w.["model.norm.weight"] 1e-5) w.["lm_head.weight"] None
    { Logits = keep logits; Residuals = List.ofSeq residuals }

// ---- GPT-J ----------------------------------------------------------------------------------------

let gptjConfig = """{
  "activation_function": "gelu_new",
  "architectures": [
    "GPTJForCausalLM"
  ],
  "attn_pdrop": 0.0,
  "bos_token_id": 52,
  "embd_pdrop": 0.0,
  "eos_token_id": 52,
  "initializer_range": 0.02,
  "layer_norm_epsilon": 1e-05,
  "model_type": "gptj",
  "n_embd": 32,
  "n_head": 4,
  "n_inner": null,
  "n_layer": 2,
  "n_positions": 16,
  "resid_pdrop": 0.0,
  "rotary_dim": 4,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "vocab_size": 53
}"""

let gptjWeights () =
    let w = HfWeights 505UL
    let d = 32L
    w.Add("transformer.wte.weight", [ 53L; d ], 0.3)
    for l in 0..1 do
        let h = sprintf "transformer.h.%d." l
        w.Add(h + "ln_1.weight", [ d ], 0.1, 1.0); w.Add(h + "ln_1.bias", [ d ], 0.1)
        for p in [ "q_proj"; "k_proj"; "v_proj" ] do w.Add(h + "attn." + p + ".weight", [ d; d ], 0.3)
        w.Add(h + "attn.out_proj.weight", [ d; d ], 0.2)
        w.Add(h + "mlp.fc_in.weight", [ 4L * d; d ], 0.2); w.Add(h + "mlp.fc_in.bias", [ 4L * d ], 0.1)
        w.Add(h + "mlp.fc_out.weight", [ d; 4L * d ], 0.1); w.Add(h + "mlp.fc_out.bias", [ d ], 0.1)
    w.Add("transformer.ln_f.weight", [ d ], 0.1, 1.0); w.Add("transformer.ln_f.bias", [ d ], 0.1)
    w.Add("lm_head.weight", [ 53L; d ], 0.3); w.Add("lm_head.bias", [ 53L ], 0.1)
    w

/// GPTJForCausalLM: one ln_1 feeds attention and MLP, both added to the residual (x + attn + mlp);
/// q/k/v without biases, rotary with adjacent pairs on the first rotary_dim = 4 dims, scores / √d_head;
/// gelu_new MLP with biases; lm_head with a bias.
let gptjReference (w: HfWeights) (tokens: Tensor) =
    use scope = torch.NewDisposeScope()
    let mutable x = embed w.["transformer.wte.weight"] tokens
    let residuals = ResizeArray()
    for l in 0..1 do
        let h = sprintf "transformer.h.%d." l
        let n = layerNorm x w.[h + "ln_1.weight"] w.[h + "ln_1.bias"] 1e-5
        let proj p = splitHeads (linear n w.[h + "attn." + p + ".weight"] None) 4L
        let z =
            attend (rotaryAdjacent (proj "q_proj") 4L 10000.0) (rotaryAdjacent (proj "k_proj") 4L 10000.0)
                (proj "v_proj") (1.0 / sqrt 8.0) causal
        let attnOut = linear (mergeHeads z) w.[h + "attn.out_proj.weight"] None
        let mlpOut =
            linear (geluNew (linear n w.[h + "mlp.fc_in.weight"] (Some w.[h + "mlp.fc_in.bias"])))
                w.[h + "mlp.fc_out.weight"] (Some w.[h + "mlp.fc_out.bias"])
        x <- x + attnOut + mlpOut
        residuals.Add(keep x)
    let final = layerNorm x w.["transformer.ln_f.weight"] w.["transformer.ln_f.bias"] 1e-5
    { Logits = keep (linear final w.["lm_head.weight"] (Some w.["lm_head.bias"])); Residuals = List.ofSeq residuals }

// ---- OPT ------------------------------------------------------------------------------------------

let optConfig = """{
  "_remove_final_layer_norm": false,
  "activation_dropout": 0.0,
  "activation_function": "relu",
  "architectures": [
    "OPTForCausalLM"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 2,
  "do_layer_norm_before": true,
  "dropout": 0.0,
  "enable_bias": true,
  "eos_token_id": 2,
  "ffn_dim": 64,
  "hidden_size": 32,
  "init_std": 0.02,
  "layer_norm_elementwise_affine": true,
  "layerdrop": 0.0,
  "max_position_embeddings": 16,
  "model_type": "opt",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "pad_token_id": 1,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "vocab_size": 53,
  "word_embed_proj_dim": 32
}"""

let optWeights () =
    let w = HfWeights 606UL
    let d, dec = 32L, "model.decoder."
    w.Add(dec + "embed_tokens.weight", [ 53L; d ], 0.3)
    w.Add(dec + "embed_positions.weight", [ 16L + 2L; d ], 0.2)
    for l in 0..1 do
        let h = sprintf "%slayers.%d." dec l
        w.Add(h + "self_attn_layer_norm.weight", [ d ], 0.1, 1.0); w.Add(h + "self_attn_layer_norm.bias", [ d ], 0.1)
        for p in [ "q_proj"; "k_proj"; "v_proj"; "out_proj" ] do
            w.Add(h + "self_attn." + p + ".weight", [ d; d ], 0.25); w.Add(h + "self_attn." + p + ".bias", [ d ], 0.1)
        w.Add(h + "final_layer_norm.weight", [ d ], 0.1, 1.0); w.Add(h + "final_layer_norm.bias", [ d ], 0.1)
        w.Add(h + "fc1.weight", [ 64L; d ], 0.2); w.Add(h + "fc1.bias", [ 64L ], 0.1)
        w.Add(h + "fc2.weight", [ d; 64L ], 0.15); w.Add(h + "fc2.bias", [ d ], 0.1)
    w.Add(dec + "final_layer_norm.weight", [ d ], 0.1, 1.0); w.Add(dec + "final_layer_norm.bias", [ d ], 0.1)
    w  // lm_head is tied to embed_tokens: save_pretrained does not store it

/// OPTForCausalLM: token embedding + embed_positions[position + 2]; pre-LN blocks; q scaled by
/// head_dim^-0.5 after its bias; ReLU MLP; final LayerNorm; lm_head = embed_tokens.
let optReference (w: HfWeights) (tokens: Tensor) =
    use scope = torch.NewDisposeScope()
    let dec = "model.decoder."
    let p = tokens.shape.[1]
    let mutable x = embed w.[dec + "embed_tokens.weight"] tokens + w.[dec + "embed_positions.weight"].narrow(0L, 2L, p)
    let residuals = ResizeArray()
    for l in 0..1 do
        let h = sprintf "%slayers.%d." dec l
        let n = layerNorm x w.[h + "self_attn_layer_norm.weight"] w.[h + "self_attn_layer_norm.bias"] 1e-5
        let proj name = linear n w.[h + "self_attn." + name + ".weight"] (Some w.[h + "self_attn." + name + ".bias"])
        let q = splitHeads (proj "q_proj" * (1.0 / sqrt 8.0)) 4L
        let z = attend q (splitHeads (proj "k_proj") 4L) (splitHeads (proj "v_proj") 4L) 1.0 causal
        x <- x + linear (mergeHeads z) w.[h + "self_attn.out_proj.weight"] (Some w.[h + "self_attn.out_proj.bias"])
        let n2 = layerNorm x w.[h + "final_layer_norm.weight"] w.[h + "final_layer_norm.bias"] 1e-5
        let hidden = torch.nn.functional.relu(linear n2 w.[h + "fc1.weight"] (Some w.[h + "fc1.bias"]))
        x <- x + linear hidden w.[h + "fc2.weight"] (Some w.[h + "fc2.bias"])
        residuals.Add(keep x)
    let final = layerNorm x w.[dec + "final_layer_norm.weight"] w.[dec + "final_layer_norm.bias"] 1e-5
    { Logits = keep (linear final w.[dec + "embed_tokens.weight"] None); Residuals = List.ofSeq residuals }

[<Tests>]
let tests =
    testList "Phi-3, GPT-J and OPT from Hugging Face folders" [
        testCase "Phi-3 (fused qkv and gate_up, GQA, partial rotary, sliding window) matches the reference forward"
        <| fun () ->
            checkFamily "Phi-3" phi3Config (phi3Weights ()) phi3Reference (fun cfg ->
                Expect.equal cfg.NKeyValueHeads (Nullable 2) "n_key_value_heads"
                Expect.equal cfg.RotaryDim (Nullable 4) "rotary_dim = partial_rotary_factor · head_dim"
                Expect.isTrue cfg.UseLocalAttn "sliding_window → local attention"
                Expect.equal cfg.WindowSize (Nullable 4) "window_size"
                Expect.isTrue cfg.GatedMlp "gated MLP")

        testCase "Phi-3: the sliding window bites on this input (a full-causal reference differs)" <| fun () ->
            let w = phi3Weights ()
            use tokens = randomTokens ()
            let windowed = phi3Reference w tokens
            // The same checkpoint without a window: the logits must move.
            let dir = tempDir "phi3-window"
            try
                writeHubFolder dir (phi3Config.Replace("\"sliding_window\": 4", "\"sliding_window\": null")) w.Tensors
                use model = HookedTransformer.FromPretrainedNoProcessing(dir)
                use logits = model.Forward(tokens)
                Expect.isGreaterThan (maxAbsDiff logits windowed.Logits) 1e-3 "the window changes the logits"
            finally Directory.Delete(dir, true)

        testCase "Phi-3: longrope rope_scaling (the 128k models) is refused naming the field" <| fun () ->
            let config =
                phi3Config.Replace("\"rope_scaling\": null",
                                   ("\"rope_scaling\": {\"type\": \"longrope\", \"long_factor\": [1.0, 1.0], "
                                    + "\"short_factor\": [1.0, 1.0]}"))
            refusedWith config (phi3Weights ()) "rope_scaling"

        testCase ("GPT-J (parallel attention + MLP with one LayerNorm, adjacent-pair partial rotary, lm_head bias) "
                  + "matches the reference forward") <| fun () ->
            checkFamily "GPT-J" gptjConfig (gptjWeights ()) gptjReference (fun cfg ->
                Expect.isTrue cfg.ParallelAttnMlp "parallel_attn_mlp"
                Expect.isTrue cfg.RotaryAdjacentPairs "rotary_adjacent_pairs"
                Expect.equal cfg.RotaryDim (Nullable 4) "rotary_dim"
                Expect.equal cfg.DMlp (Nullable 128) "d_mlp = 4 n_embd")

        testCase "OPT (learned positions offset by 2, pre-LN, ReLU, tied lm_head) matches the reference forward"
        <| fun () ->
            checkFamily "OPT" optConfig (optWeights ()) optReference (fun cfg ->
                Expect.equal cfg.PositionalEmbeddingType "standard" "learned positions"
                Expect.equal cfg.ActFn "relu" "ReLU"
                Expect.equal cfg.NCtx 16 "n_ctx = max_position_embeddings")

        testCase "OPT: the position offset matters (positions without it move the logits)" <| fun () ->
            let w = optWeights ()
            use tokens = randomTokens ()
            let right = optReference w tokens
            let shifted = HfWeights 606UL
            for kv in w.Tensors do shifted.Tensors.[kv.Key] <- kv.Value
            let table = w.Tensors.["model.decoder.embed_positions.weight"]
            shifted.Tensors.["model.decoder.embed_positions.weight"] <-
                torch.cat([| table.narrow(0L, 2L, 16L); table.narrow(0L, 0L, 2L) |], 0L)
            let wrong = optReference shifted tokens
            Expect.isGreaterThan (maxAbsDiff right.Logits wrong.Logits) 1e-3 "the reference tells an offset of 0 from 2"

        testCase ("OPT: post-LayerNorm (do_layer_norm_before false) and an embedding projection are refused naming the "
                  + "field") <| fun () ->
            refusedWith (optConfig.Replace("\"do_layer_norm_before\": true", "\"do_layer_norm_before\": false"))
                (optWeights ()) "do_layer_norm_before"
            refusedWith (optConfig.Replace("\"word_embed_proj_dim\": 32", "\"word_embed_proj_dim\": 16"))
                (optWeights ()) "word_embed_proj_dim"

        testCase "official names and aliases of Mixtral, Phi-3, GPT-J and OPT resolve to their hub ids" <| fun () ->
            for alias, official in
                [ "mixtral", "mistralai/Mixtral-8x7B-v0.1";
                  "mixtral-8x7b-instruct", "mistralai/Mixtral-8x7B-Instruct-v0.1"
                  "phi-3", "microsoft/Phi-3-mini-4k-instruct"; "gptj", "EleutherAI/gpt-j-6B"; "gpt-j-6B",
                      "EleutherAI/gpt-j-6B"
                  "opt", "facebook/opt-125m"; "opt-xxxxl", "facebook/opt-66b"; "OPT-1.3B", "facebook/opt-1.3b" ] do
                Expect.equal (OfficialModels.GetOfficialName alias) official alias
            for arch in [ "MixtralForCausalLM"; "Phi3ForCausalLM"; "GPTJForCausalLM"; "OPTForCausalLM" ] do
                Expect.contains (HfArchitecture.Supported |> List.ofSeq) arch (arch + " converts")
    ]
