/// Hub-layout conversion: TransformerLens's hf-gpt2 oracle, and for GPT-Neo, GPT-NeoX and the Llama
/// family tiny checkpoints written here in each architecture's own layout, checked against
/// straightforward reference forwards written from the Hugging Face modelling code's semantics.
module Lens.Tests.ArchitectureTests

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

type Tensor = torch.Tensor

// ---- writing checkpoints in the hub layout -------------------------------------------------------

/// HF-named float32 tensors drawn with a fixed seed; the same values feed the checkpoint and the reference.
type HfWeights(seed: uint64) =
    let g = new torch.Generator(seed)
    let tensors = Dictionary<string, Tensor>()
    member _.Add(name: string, shape: int64 list, std: float, ?mean: float) =
        use r = torch.randn(Array.ofList shape, generator = g)
        tensors.[name] <- r * std + defaultArg mean 0.0
    member _.Item with get (name: string) = tensors.[name].to_type(torch.float64)
    member _.Has(name: string) = tensors.ContainsKey name
    member _.Tensors = tensors

let private scratch = scratchFolder "lens-architecture-tests"

/// A fresh folder named from label, removed when the test process exits.
let tempDir (label: string) = freshFolderIn scratch label

/// Writes config.json and model.safetensors (HF's save_pretrained layout, metadata format=pt).
let writeHubFolder (dir: string) (configJson: string) (weights: seq<KeyValuePair<string, Tensor>>) =
    File.WriteAllText(Path.Combine(dir, "config.json"), configJson)
    SafetensorsFile.Save(Path.Combine(dir, "model.safetensors"), weights, readOnlyDict [ "format", "pt" ])

// ---- reference building blocks (HF modelling semantics, float64) ---------------------------------

let layerNorm (x: Tensor) (w: Tensor) (b: Tensor) (eps: float) =
    let mean = x.mean([| -1L |], keepdim = true)
    let centred = x - mean
    let var = centred.square().mean([| -1L |], keepdim = true)
    centred / (var + eps).sqrt() * w + b

let rmsNorm (x: Tensor) (w: Tensor) (eps: float) =
    x * (x.square().mean([| -1L |], keepdim = true) + eps).rsqrt() * w

/// nn.Linear: x Wᵀ (+ b).
let linear (x: Tensor) (w: Tensor) (b: Tensor option) =
    let y = x.matmul(w.t())
    match b with
    | Some b -> y + b
    | None -> y

let geluNew (x: Tensor) = x * 0.5 * (((x + x * x * x * 0.044715) * Math.Sqrt(2.0 / Math.PI)).tanh() + 1.0)

/// [b, p, heads·e] → [b, heads, p, e] and back.
let splitHeads (x: Tensor) (heads: int64) = x.view(x.shape.[0], x.shape.[1], heads, -1L).permute(0L, 2L, 1L, 3L)
let mergeHeads (x: Tensor) = x.permute(0L, 2L, 1L, 3L).reshape(x.shape.[0], x.shape.[2], -1L)

/// softmax(q kᵀ · scale + mask) v where key j is visible from query i iff visible i j.
let attend (q: Tensor) (k: Tensor) (v: Tensor) (scale: float) (visible: int64 -> int64 -> bool) =
    let p = q.shape.[2]
    let allowed = torch.tensor(Array2D.init (int p) (int p) (fun i j -> visible (int64 i) (int64 j)))
    let scores = q.matmul(k.transpose(-1L, -2L)) * scale
    scores.masked_fill(allowed.logical_not(), Double.NegativeInfinity).softmax(-1L).matmul(v)

let causal i j = j <= i

/// The standard rotary inverse frequencies θ^(-2j/rotDim), j = 0 .. rotDim/2 - 1.
let standardInvFreq (rotDim: int64) (theta: float) =
    [| for j in 0L .. rotDim / 2L - 1L -> Math.Pow(theta, -2.0 * float j / float rotDim) |]

/// Llama 3's rope_scaling (HF's _compute_llama3_parameters): wavelengths above original/low are slowed
/// by factor, below original/high kept, and interpolated in between.
let llama3InvFreq (rotDim: int64) (theta: float) (factor: float, low: float, high: float, original: float) =
    standardInvFreq rotDim theta
    |> Array.map (fun f ->
        let wavelen = 2.0 * Math.PI / f
        if wavelen < original / high then f
        elif wavelen > original / low then f / factor
        else
            let s = (original / wavelen - low) / (high - low)
            (1.0 - s) * f / factor + s * f)

/// HF's rotate_half rotary on the first rotDim dims of x [b, heads, p, e] (positions 0..p-1).
let rotaryWith (invFreqs: float[]) (x: Tensor) (rotDim: int64) =
    let p = x.shape.[2]
    let invFreq = torch.tensor(invFreqs, dtype = torch.float64)
    let freqs = torch.outer(torch.arange(p, dtype = torch.float64), invFreq)
    let emb = torch.cat([| freqs; freqs |], -1L)
    let cos, sin = emb.cos(), emb.sin()
    let xr, rest = x.narrow(-1L, 0L, rotDim), x.narrow(-1L, rotDim, x.shape.[3] - rotDim)
    let half = rotDim / 2L
    let rotated = torch.cat([| xr.narrow(-1L, half, half).neg(); xr.narrow(-1L, 0L, half) |], -1L)
    torch.cat([| xr * cos + rotated * sin; rest |], -1L)

let rotary (x: Tensor) (rotDim: int64) (theta: float) = rotaryWith (standardInvFreq rotDim theta) x rotDim

/// HF's repeat_kv: [b, kv, p, e] → [b, kv·rep, p, e], query head h reading kv head h / rep.
let repeatKv (x: Tensor) (rep: int64) =
    if rep = 1L then x
    else
        x.unsqueeze(2L).expand(x.shape.[0], x.shape.[1], rep, x.shape.[2], x.shape.[3])
            .reshape(x.shape.[0], x.shape.[1] * rep, x.shape.[2], x.shape.[3])

let embed (table: Tensor) (tokens: Tensor) =
    table.index_select(0L, tokens.flatten()).view(tokens.shape.[0], tokens.shape.[1], -1L)

let inScope (f: unit -> Tensor) =
    use scope = torch.NewDisposeScope()
    f().MoveToOuterDisposeScope()

// ---- GPT-Neo --------------------------------------------------------------------------------------

let neoConfig = """{
  "activation_function": "gelu_new",
  "architectures": [
    "GPTNeoForCausalLM"
  ],
  "attention_dropout": 0.0,
  "attention_layers": [
    "global",
    "local"
  ],
  "attention_types": [
    [
      [
        "global",
        "local"
      ],
      1
    ]
  ],
  "bos_token_id": 52,
  "classifier_dropout": 0.1,
  "embed_dropout": 0.0,
  "eos_token_id": 52,
  "gradient_checkpointing": false,
  "hidden_size": 32,
  "initializer_range": 0.02,
  "intermediate_size": null,
  "layer_norm_epsilon": 1e-05,
  "max_position_embeddings": 16,
  "model_type": "gpt_neo",
  "num_heads": 4,
  "num_layers": 2,
  "resid_dropout": 0.0,
  "summary_activation": null,
  "summary_first_dropout": 0.1,
  "summary_proj_to_labels": true,
  "summary_type": "cls_index",
  "summary_use_proj": true,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "vocab_size": 53,
  "window_size": 4
}"""

let neoWeights () =
    let w = HfWeights 101UL
    let d = 32L
    w.Add("transformer.wte.weight", [ 53L; d ], 0.3)
    w.Add("transformer.wpe.weight", [ 16L; d ], 0.1)
    for l in 0..1 do
        let h = sprintf "transformer.h.%d." l
        w.Add(h + "ln_1.weight", [ d ], 0.1, 1.0); w.Add(h + "ln_1.bias", [ d ], 0.1)
        for p in [ "q_proj"; "k_proj"; "v_proj" ] do w.Add(h + "attn.attention." + p + ".weight", [ d; d ], 0.25)
        w.Add(h + "attn.attention.out_proj.weight", [ d; d ], 0.2);
        w.Add(h + "attn.attention.out_proj.bias", [ d ], 0.1)
        w.Add(h + "ln_2.weight", [ d ], 0.1, 1.0); w.Add(h + "ln_2.bias", [ d ], 0.1)
        w.Add(h + "mlp.c_fc.weight", [ 4L * d; d ], 0.2); w.Add(h + "mlp.c_fc.bias", [ 4L * d ], 0.1)
        w.Add(h + "mlp.c_proj.weight", [ d; 4L * d ], 0.1); w.Add(h + "mlp.c_proj.bias", [ d ], 0.1)
    w.Add("transformer.ln_f.weight", [ d ], 0.1, 1.0); w.Add("transformer.ln_f.bias", [ d ], 0.1)
    w  // lm_head is tied to wte: save_pretrained does not store it

/// GPTNeoForCausalLM: learned positions, pre-LN blocks, attention NOT scaled by 1/√d_head, layer 1
/// local (a query sees the window_size most recent keys, itself included), tied lm_head.
let neoReference (w: HfWeights) (tokens: Tensor) = inScope (fun () ->
    let p = tokens.shape.[1]
    let mutable x = embed w.["transformer.wte.weight"] tokens + w.["transformer.wpe.weight"].narrow(0L, 0L, p)
    for l in 0..1 do
        let h = sprintf "transformer.h.%d." l
        let a = h + "attn.attention."
        let n = layerNorm x w.[h + "ln_1.weight"] w.[h + "ln_1.bias"] 1e-5
        let q, k, v =
            splitHeads (linear n w.[a + "q_proj.weight"] None) 4L, splitHeads (linear n w.[a + "k_proj.weight"] None)
                4L, splitHeads (linear n w.[a + "v_proj.weight"] None) 4L
        let visible = if l = 1 then (fun i j -> j <= i && i - j < 4L) else causal
        let z = attend q k v 1.0 visible
        x <- x + linear (mergeHeads z) w.[a + "out_proj.weight"] (Some w.[a + "out_proj.bias"])
        let n2 = layerNorm x w.[h + "ln_2.weight"] w.[h + "ln_2.bias"] 1e-5
        let hidden = geluNew (linear n2 w.[h + "mlp.c_fc.weight"] (Some w.[h + "mlp.c_fc.bias"]))
        x <- x + linear hidden w.[h + "mlp.c_proj.weight"] (Some w.[h + "mlp.c_proj.bias"])
    let final = layerNorm x w.["transformer.ln_f.weight"] w.["transformer.ln_f.bias"] 1e-5
    linear final w.["transformer.wte.weight"] None)

// ---- GPT-NeoX ------------------------------------------------------------------------------------

let neoxConfig = """{
  "architectures": [
    "GPTNeoXForCausalLM"
  ],
  "attention_bias": true,
  "attention_dropout": 0.0,
  "bos_token_id": 0,
  "classifier_dropout": 0.1,
  "eos_token_id": 0,
  "hidden_act": "gelu",
  "hidden_dropout": 0.0,
  "hidden_size": 32,
  "initializer_range": 0.02,
  "intermediate_size": 64,
  "layer_norm_eps": 1e-05,
  "max_position_embeddings": 16,
  "model_type": "gpt_neox",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "partial_rotary_factor": 0.5,
  "rope_scaling": null,
  "rotary_emb_base": 10000,
  "rotary_pct": 0.5,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "use_parallel_residual": true,
  "vocab_size": 53
}"""

let neoxWeightsWith (vocab: int64) =
    let w = HfWeights 202UL
    let d = 32L
    w.Add("gpt_neox.embed_in.weight", [ vocab; d ], 0.3)
    for l in 0..1 do
        let h = sprintf "gpt_neox.layers.%d." l
        w.Add(h + "input_layernorm.weight", [ d ], 0.1, 1.0); w.Add(h + "input_layernorm.bias", [ d ], 0.1)
        w.Add(h + "attention.query_key_value.weight", [ 3L * d; d ], 0.3);
        w.Add(h + "attention.query_key_value.bias", [ 3L * d ], 0.1)
        w.Add(h + "attention.dense.weight", [ d; d ], 0.2); w.Add(h + "attention.dense.bias", [ d ], 0.1)
        w.Add(h + "post_attention_layernorm.weight", [ d ], 0.1, 1.0);
        w.Add(h + "post_attention_layernorm.bias", [ d ], 0.1)
        w.Add(h + "mlp.dense_h_to_4h.weight", [ 64L; d ], 0.2); w.Add(h + "mlp.dense_h_to_4h.bias", [ 64L ], 0.1)
        w.Add(h + "mlp.dense_4h_to_h.weight", [ d; 64L ], 0.1); w.Add(h + "mlp.dense_4h_to_h.bias", [ d ], 0.1)
    w.Add("gpt_neox.final_layer_norm.weight", [ d ], 0.1, 1.0); w.Add("gpt_neox.final_layer_norm.bias", [ d ], 0.1)
    w.Add("embed_out.weight", [ vocab; d ], 0.3)
    w

let neoxWeights () = neoxWeightsWith 53L

/// GPTNeoXForCausalLM: fused query_key_value viewed as [.., head, 3·d_head] (q, k, v per head),
/// rotate-half rotary on the first rotary_pct·d_head dims, scaled attention, and the parallel
/// residual x + attn(ln1(x)) + mlp(ln2(x)) with exact GELU; separate embed_out.
let neoxReference (w: HfWeights) (tokens: Tensor) = inScope (fun () ->
    let mutable x = embed w.["gpt_neox.embed_in.weight"] tokens
    let e = 8L
    for l in 0..1 do
        let h = sprintf "gpt_neox.layers.%d." l
        let n = layerNorm x w.[h + "input_layernorm.weight"] w.[h + "input_layernorm.bias"] 1e-5
        let qkv = linear n w.[h + "attention.query_key_value.weight"] (Some w.[h + "attention.query_key_value.bias"])
        let perHead = qkv.view(qkv.shape.[0], qkv.shape.[1], 4L, 3L * e).permute(0L, 2L, 1L, 3L)
        let q, k, v = perHead.narrow(-1L, 0L, e), perHead.narrow(-1L, e, e), perHead.narrow(-1L, 2L * e, e)
        let z = attend (rotary q 4L 10000.0) (rotary k 4L 10000.0) v (1.0 / sqrt 8.0) causal
        let attnOut = linear (mergeHeads z) w.[h + "attention.dense.weight"] (Some w.[h + "attention.dense.bias"])
        let n2 = layerNorm x w.[h + "post_attention_layernorm.weight"] w.[h + "post_attention_layernorm.bias"] 1e-5
        let hidden =
            torch.nn.functional.gelu(linear n2 w.[h + "mlp.dense_h_to_4h.weight"]
                                         (Some w.[h + "mlp.dense_h_to_4h.bias"]))
        let mlpOut = linear hidden w.[h + "mlp.dense_4h_to_h.weight"] (Some w.[h + "mlp.dense_4h_to_h.bias"])
        x <- x + attnOut + mlpOut
    let final = layerNorm x w.["gpt_neox.final_layer_norm.weight"] w.["gpt_neox.final_layer_norm.bias"] 1e-5
    linear final w.["embed_out.weight"] None)

// ---- Llama family --------------------------------------------------------------------------------

type LlamaSpec =
    { Label: string; Config: string; Heads: int64; KvHeads: int64; Eps: float; Theta: float; QkvBias: bool; Tied: bool
      /// Llama 3 rope_scaling: factor, low_freq_factor, high_freq_factor, original_max_position_embeddings.
      Llama3Scaling: (float * float * float * float) option }

let llamaSpec =
    { Label = "Llama (GQA 4 query / 2 kv heads)"; Heads = 4L; KvHeads = 2L; Eps = 1e-5; Theta = 10000.0;
      QkvBias = false; Tied = false; Llama3Scaling = None
      Config = """{
  "architectures": [
    "LlamaForCausalLM"
  ],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "head_dim": 8,
  "hidden_act": "silu",
  "hidden_size": 32,
  "initializer_range": 0.02,
  "intermediate_size": 48,
  "max_position_embeddings": 16,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": null,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "vocab_size": 53
}""" }

let qwen2Spec =
    { Label = "Qwen2 (q/k/v biases, GQA, tied embeddings)"; Heads = 4L; KvHeads = 2L; Eps = 1e-6; Theta = 1000000.0;
      QkvBias = true; Tied = true; Llama3Scaling = None
      Config = """{
  "architectures": [
    "Qwen2ForCausalLM"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 52,
  "eos_token_id": 52,
  "hidden_act": "silu",
  "hidden_size": 32,
  "initializer_range": 0.02,
  "intermediate_size": 48,
  "max_position_embeddings": 32768,
  "max_window_layers": 2,
  "model_type": "qwen2",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 2,
  "rms_norm_eps": 1e-06,
  "rope_scaling": null,
  "rope_theta": 1000000.0,
  "sliding_window": 32768,
  "tie_word_embeddings": true,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "use_sliding_window": false,
  "vocab_size": 53
}""" }

let mistralSpec =
    { Label = "Mistral (4 query heads share 1 kv head)"; Heads = 4L; KvHeads = 1L; Eps = 1e-5; Theta = 10000.0;
      QkvBias = false; Tied = false; Llama3Scaling = None
      Config = """{
  "architectures": [
    "MistralForCausalLM"
  ],
  "attention_dropout": 0.0,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "head_dim": 8,
  "hidden_act": "silu",
  "hidden_size": 32,
  "initializer_range": 0.02,
  "intermediate_size": 48,
  "max_position_embeddings": 32768,
  "model_type": "mistral",
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "num_key_value_heads": 1,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "tie_word_embeddings": false,
  "torch_dtype": "float32",
  "transformers_version": "4.46.3",
  "use_cache": true,
  "vocab_size": 53
}""" }

/// Llama 3.2-style: rope_theta 500000 and rope_scaling llama3 (the two lowest frequencies of an 8-dim
/// head fall in the slowed and the interpolated bands of original_max_position_embeddings 8192).
let llama3Spec =
    { llamaSpec with
        Label = "Llama 3 (rope_scaling llama3, tied embeddings)"; Theta = 500000.0; Tied = true
        Llama3Scaling = Some(32.0, 1.0, 4.0, 8192.0)
        Config =
            llamaSpec.Config
                .Replace("\"rope_scaling\": null",
                         ("\"rope_scaling\": {\n    \"factor\": 32.0,\n    \"high_freq_factor\": 4.0,\n"
                          + "    \"low_freq_factor\": 1.0,\n    \"original_max_position_embeddings\": 8192,\n"
                          + "    \"rope_type\": \"llama3\"\n  }"))
                .Replace("\"rope_theta\": 10000.0", "\"rope_theta\": 500000.0")
                .Replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true")
                .Replace("\"max_position_embeddings\": 16", "\"max_position_embeddings\": 131072") }

let llamaWeightsWith (vocab: int64) (spec: LlamaSpec) =
    let w = HfWeights 303UL
    let d, e, f = 32L, 8L, 48L
    w.Add("model.embed_tokens.weight", [ vocab; d ], 0.3)
    for l in 0..1 do
        let h = sprintf "model.layers.%d." l
        w.Add(h + "input_layernorm.weight", [ d ], 0.1, 1.0)
        w.Add(h + "self_attn.q_proj.weight", [ spec.Heads * e; d ], 0.2)
        w.Add(h + "self_attn.k_proj.weight", [ spec.KvHeads * e; d ], 0.2)
        w.Add(h + "self_attn.v_proj.weight", [ spec.KvHeads * e; d ], 0.2)
        if spec.QkvBias then
            w.Add(h + "self_attn.q_proj.bias", [ spec.Heads * e ], 0.1)
            w.Add(h + "self_attn.k_proj.bias", [ spec.KvHeads * e ], 0.1)
            w.Add(h + "self_attn.v_proj.bias", [ spec.KvHeads * e ], 0.1)
        w.Add(h + "self_attn.o_proj.weight", [ d; spec.Heads * e ], 0.2)
        w.Add(h + "post_attention_layernorm.weight", [ d ], 0.1, 1.0)
        w.Add(h + "mlp.gate_proj.weight", [ f; d ], 0.3)
        w.Add(h + "mlp.up_proj.weight", [ f; d ], 0.3)
        w.Add(h + "mlp.down_proj.weight", [ d; f ], 0.2)
    w.Add("model.norm.weight", [ d ], 0.1, 1.0)
    if not spec.Tied then w.Add("lm_head.weight", [ vocab; d ], 0.3)
    w

let llamaWeights (spec: LlamaSpec) = llamaWeightsWith 53L spec

/// LlamaForCausalLM and relatives: RMSNorm, rotate-half rotary over the whole head (base rope_theta),
/// grouped-query attention (repeat_kv), SwiGLU down(silu(gate x) · up x), final norm, lm_head (or
/// the embedding when tied); Qwen2 adds q/k/v biases.
let llamaReference (spec: LlamaSpec) (w: HfWeights) (tokens: Tensor) = inScope (fun () ->
    let mutable x = embed w.["model.embed_tokens.weight"] tokens
    let bias name = if spec.QkvBias then Some w.[name] else None
    for l in 0..1 do
        let h = sprintf "model.layers.%d." l
        let a = h + "self_attn."
        let n = rmsNorm x w.[h + "input_layernorm.weight"] spec.Eps
        let q = splitHeads (linear n w.[a + "q_proj.weight"] (bias (a + "q_proj.bias"))) spec.Heads
        let k = splitHeads (linear n w.[a + "k_proj.weight"] (bias (a + "k_proj.bias"))) spec.KvHeads
        let v = splitHeads (linear n w.[a + "v_proj.weight"] (bias (a + "v_proj.bias"))) spec.KvHeads
        let rep = spec.Heads / spec.KvHeads
        let invFreq =
            match spec.Llama3Scaling with
            | Some scaling -> llama3InvFreq 8L spec.Theta scaling
            | None -> standardInvFreq 8L spec.Theta
        let z =
            attend (rotaryWith invFreq q 8L) (repeatKv (rotaryWith invFreq k 8L) rep) (repeatKv v rep) (1.0 / sqrt 8.0)
                causal
        x <- x + linear (mergeHeads z) w.[a + "o_proj.weight"] None
        let n2 = rmsNorm x w.[h + "post_attention_layernorm.weight"] spec.Eps
        let gated =
            torch.nn.functional.silu(linear n2 w.[h + "mlp.gate_proj.weight"] None) * linear n2
                w.[h + "mlp.up_proj.weight"] None
        x <- x + linear gated w.[h + "mlp.down_proj.weight"] None
    let final = rmsNorm x w.["model.norm.weight"] spec.Eps
    linear final (if spec.Tied then w.["model.embed_tokens.weight"] else w.["lm_head.weight"]) None)

// ---- checks --------------------------------------------------------------------------------------

let randomTokens () =
    use g = new torch.Generator(77UL)
    torch.randint(53L, [| 2L; 10L |], generator = g, dtype = torch.int64)

/// Loads the folder unprocessed and processed and compares both with the reference.
let checkAgainstReference (label: string) (dir: string) (reference: Tensor -> Tensor) =
    use tokens = randomTokens ()
    use expected = reference tokens
    use raw = HubLayoutLoader.Load(dir, LoadOptions(ProcessWeights = false))
    use logits = raw.Forward(tokens)
    closeAndMeasured 1e-5 (label + " logits vs reference") logits expected
    // In float64 the only difference left is rounding: the conversion itself is exact.
    use raw64 = HubLayoutLoader.Load(dir, LoadOptions(ProcessWeights = false, Dtype = Nullable torch.float64))
    use logits64 = raw64.Forward(tokens)
    closeAndMeasured 1e-10 (label + " float64 logits vs reference") logits64 expected
    use processed = HubLayoutLoader.Load(dir)
    use processedLogits = processed.Forward(tokens)
    use a = logSoftmax processedLogits
    use b = logSoftmax expected
    closeAndMeasured 1e-5 (label + " processed log-probs vs reference") a b

let archTest (label: string) (config: string) (weights: unit -> HfWeights) (reference: HfWeights -> Tensor -> Tensor)
    (check: HookedTransformerConfig -> unit) =
    testCase (label + (": a checkpoint in its own hub layout converts and matches the reference forward within 1e-5 "
                       + "(unprocessed and processed)")) <| fun () ->
        let w = weights ()
        let dir = tempDir "arch"
        try
            writeHubFolder dir config w.Tensors
            check (HubLayoutLoader.ReadConfig dir)
            checkAgainstReference label dir (reference w)
        finally Directory.Delete(dir, true)

let gpt2 = lazy (Oracle "hf-gpt2")

[<Tests>]
let tests =
    testList "hub-layout conversion" [
        testCase "hf-gpt2: the config maps as TransformerLens's get_pretrained_model_config does" <| fun () ->
            let cfg = HubLayoutLoader.ReadConfig(gpt2.Value.Dir)
            let m = gpt2.Value.Manifest.GetProperty "config"
            Expect.equal cfg.NCtx (m.GetProperty("n_ctx").GetInt32()) "n_ctx"
            Expect.equal cfg.DMlp (Nullable(m.GetProperty("d_mlp").GetInt32())) "d_mlp = 4 d_model"
            Expect.equal cfg.ActFn (m.GetProperty("act_fn").GetString()) "act_fn"
            Expect.equal cfg.Eps (m.GetProperty("eps").GetDouble()) "eps"
            Expect.equal cfg.AttnScale (m.GetProperty("attn_scale").GetDouble()) "attn_scale"
            Expect.equal cfg.OriginalArchitecture "GPT2LMHeadModel" "original_architecture"
            Expect.equal cfg.ModelName "hf-gpt2" "model_name is the folder name"
            Expect.equal cfg.NormalizationType "LN" "LN before processing"

        testCase ("hf-gpt2: converted state dict equals TransformerLens's tl_state_dict, logits and hooks match "
                  + "(unprocessed and processed) within 1e-5") <| fun () ->
            let expected = gpt2.Value.Expected "expected.safetensors"
            let tlState = gpt2.Value.Expected "tl_state_dict.safetensors"
            use model = HookedTransformer.FromPretrainedNoProcessing(gpt2.Value.Dir)
            let state = model.StateDict() |> Seq.map (fun kv -> kv.Key, kv.Value) |> dict
            for name in tlState.Keys do expectClose 1e-5 name state.[name] tlState.[name]
            let worst = tlState.Keys |> Seq.map (fun k -> maxAbsDiff state.[k] tlState.[k]) |> Seq.max
            printfn "[parity] hf-gpt2 converted state dict vs tl_state_dict: max |diff| = %.3g" worst
            Expect.equal (state.["unembed.b_U"].abs().sum().item<float32>()) 0.0f
                "b_U is filled with zeros (fill_missing_keys)"
            let tokens = expected.["tokens"]
            use run = model.RunWithCache(tokens)
            closeAndMeasured 1e-5 "hf-gpt2 logits (no processing)" run.Logits expected.["logits"]
            for name in [ "blocks.0.attn.hook_pattern"; "blocks.1.hook_resid_post"; "ln_final.hook_normalized" ] do
                closeAndMeasured 1e-5 ("hf-gpt2 " + name) run.Cache.[name] expected.[name]
            use loss = model.Loss(tokens, perToken = true)
            closeAndMeasured 1e-5 "hf-gpt2 loss_per_token" loss expected.["loss_per_token"]
            use processed = HookedTransformer.FromPretrained(gpt2.Value.Dir)
            Expect.equal processed.Config.NormalizationType "LNPre" "processed by default"
            use processedLogits = processed.Forward(tokens)
            closeAndMeasured 1e-5 "hf-gpt2 processed logits" processedLogits expected.["processed.logits"]
            disposeAll expected
            disposeAll tlState

        testCase ("hf-gpt2: a checkpoint saved from the base model (no 'transformer.' prefix, as the official gpt2 "
                  + "files) loads the same") <| fun () ->
            let dir = tempDir "gpt2-base"
            try
                let weights = SafetensorsFile.LoadAll(Path.Combine(gpt2.Value.Dir, "model.safetensors"))
                let renamed =
                    weights |> Seq.map (fun kv -> KeyValuePair(kv.Key.Replace("transformer.", ""), kv.Value))
                        |> List.ofSeq
                writeHubFolder dir (File.ReadAllText(Path.Combine(gpt2.Value.Dir, "config.json"))) renamed
                let expected = gpt2.Value.Expected "expected.safetensors"
                use model = HubLayoutLoader.Load(dir, LoadOptions(ProcessWeights = false))
                use logits = model.Forward(expected.["tokens"])
                expectClose 1e-5 "logits" logits expected.["logits"]
                disposeAll expected
                for t in weights.Values do t.Dispose()
            finally Directory.Delete(dir, true)

        testCase "hf-gpt2: float16 and bfloat16 load with that dtype and stay close to float32" <| fun () ->
            let expected = gpt2.Value.Expected "expected.safetensors"
            for dtype, tol in [ torch.float16, 0.02; torch.bfloat16, 0.1 ] do
                use model =
                    HookedTransformer.FromPretrainedNoProcessing(gpt2.Value.Dir, LoadOptions(Dtype = Nullable dtype))
                Expect.equal model.Dtype dtype "parameters in the requested dtype"
                Expect.equal (model.StateDict() |> Seq.filter (fun kv -> kv.Value.dtype <> dtype) |> Seq.length) 0
                    "every parameter"
                use logits = model.Forward(expected.["tokens"])
                let d = maxAbsDiff logits expected.["logits"]
                printfn "[parity] hf-gpt2 %A logits vs float32 oracle: max |diff| = %.3g" dtype d
                Expect.isLessThan d tol "close to the float32 logits"
                use processed = HookedTransformer.FromPretrained(gpt2.Value.Dir, LoadOptions(Dtype = Nullable dtype))
                Expect.equal processed.Dtype dtype "processed (in float32) then converted"
            disposeAll expected

        archTest "GPT-Neo (global + local attention, unscaled)" neoConfig neoWeights neoReference (fun cfg ->
            Expect.isFalse cfg.UseAttnScale "GPT-Neo does not scale attention scores"
            Expect.equal cfg.AttnScale 1.0 "attn_scale 1"
            Expect.sequenceEqual cfg.AttnTypes [| "global"; "local" |] "attn_types from attention_layers"
            Expect.equal cfg.WindowSize (Nullable 4) "window_size"
            Expect.equal cfg.DMlp (Nullable 128) "d_mlp 4·hidden")

        archTest "GPT-NeoX (fused interleaved QKV, partial rotary, parallel block)" neoxConfig neoxWeights neoxReference
            (fun cfg ->
            Expect.equal cfg.RotaryDim (Nullable 4) "rotary_dim = rotary_pct · d_head"
            Expect.isTrue cfg.ParallelAttnMlp "parallel attention and MLP"
            Expect.isFalse cfg.RotaryAdjacentPairs "rotate-half"
            Expect.equal cfg.ActFn "gelu" "hidden_act")

        archTest llamaSpec.Label llamaSpec.Config (fun () -> llamaWeights llamaSpec) (llamaReference llamaSpec)
            (fun cfg ->
            Expect.equal cfg.NKeyValueHeads (Nullable 2) "n_key_value_heads"
            Expect.isTrue cfg.FinalRms "final_rms"
            Expect.isTrue cfg.GatedMlp "gated MLP"
            Expect.equal cfg.NormalizationType "RMS" "RMSNorm"
            Expect.equal cfg.NCtx 16 "n_ctx = max_position_embeddings")

        archTest llama3Spec.Label llama3Spec.Config (fun () -> llamaWeights llama3Spec) (llamaReference llama3Spec)
            (fun cfg ->
            Expect.isTrue cfg.UseNtkByPartsRope "NTK-by-parts rotary"
            Expect.equal
                (cfg.NtkByPartsFactor, cfg.NtkByPartsLowFreqFactor, cfg.NtkByPartsHighFreqFactor, cfg.NtkOriginalCtxLen)
                (32.0, 1.0, 4.0, 8192) "rope_scaling values"
            Expect.equal cfg.NCtx 2048 "n_ctx capped at 2048 as TransformerLens's Llama 3 configs"
            Expect.equal cfg.RotaryBase 500000.0 "rope_theta")

        testCase ("Llama 3 rope scaling is not a no-op here: ignoring it moves the reference logits by far more than "
                  + "the tolerance") <| fun () ->
            let w = llamaWeights llama3Spec
            use tokens = randomTokens ()
            use scaled = llamaReference llama3Spec w tokens
            use unscaled = llamaReference { llama3Spec with Llama3Scaling = None } w tokens
            let d = maxAbsDiff scaled unscaled
            printfn "[parity] Llama 3 reference with vs without rope scaling: max |diff| = %.3g" d
            Expect.isGreaterThan d 1e-3 "the test above can tell scaled from unscaled rotary"

        archTest qwen2Spec.Label qwen2Spec.Config (fun () -> llamaWeights qwen2Spec) (llamaReference qwen2Spec)
            (fun cfg ->
            Expect.equal cfg.NCtx 2048 "n_ctx capped at 2048 as TransformerLens does"
            Expect.equal cfg.RotaryBase 1000000.0 "rotary_base = rope_theta"
            Expect.isFalse cfg.DefaultPrependBos "Qwen2: default_prepend_bos false"
            Expect.equal cfg.TokenizerPrependsBos (Nullable true) "tokenizer_prepends_bos")

        archTest mistralSpec.Label mistralSpec.Config (fun () -> llamaWeights mistralSpec) (llamaReference mistralSpec)
            (fun cfg ->
            Expect.equal cfg.NKeyValueHeads (Nullable 1) "n_key_value_heads"
            Expect.equal cfg.WindowSize (Nullable 4096) "window_size = sliding_window"
            Expect.isTrue cfg.UseLocalAttn "local attention (sliding window)")

        testCase "Llama GQA: _W_K/_W_V hold the kv heads and W_K repeats them (query head h reads kv head h / 2)"
        <| fun () ->
            let w = llamaWeights llamaSpec
            let dir = tempDir "llama-gqa"
            try
                writeHubFolder dir llamaSpec.Config w.Tensors
                use model = HookedTransformer.FromPretrainedNoProcessing(dir)
                Expect.sequenceEqual model.blocks.[0].attn._W_K.shape [| 2L; 32L; 8L |]
                    "_W_K [kv_heads, d_model, d_head]"
                use wk = model.W_K
                expectClose 0.0 "head 3 = kv head 1" (wk.[0L, 3L]) (wk.[0L, 2L])
                use kproj = w.["model.layers.0.self_attn.k_proj.weight"].to_type(torch.float32)
                expectClose 0.0 "kv head 1 = k_proj rows 8..15, transposed" (wk.[0L, 2L]) (kproj.narrow(0L, 8L, 8L).t())
            finally Directory.Delete(dir, true)

        testCase "a sharded checkpoint (model.safetensors.index.json) loads the same as a single file" <| fun () ->
            let w = llamaWeights llamaSpec
            let dir = tempDir "sharded"
            try
                File.WriteAllText(Path.Combine(dir, "config.json"), llamaSpec.Config)
                let names = w.Tensors.Keys |> Seq.sort |> Array.ofSeq
                let half = names.Length / 2
                let shards =
                    [ "model-00001-of-00002.safetensors", names.[.. half - 1];
                      "model-00002-of-00002.safetensors", names.[half ..] ]
                for file, part in shards do
                    SafetensorsFile.Save(Path.Combine(dir, file),
                                         part
                                             |> Seq.map (fun n -> KeyValuePair(n, w.Tensors.[n])), readOnlyDict
                                                 [ "format", "pt" ])
                let map =
                    shards |> List.collect (fun (file, part) -> [ for n in part -> sprintf "\"%s\": \"%s\"" n file ])
                        |> String.concat ",\n    "
                File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
                                  sprintf "{\n  \"metadata\": {\"total_size\": 0},\n  \"weight_map\": {\n    %s\n  }\n}"
                                      map)
                use tokens = randomTokens ()
                use expected = llamaReference llamaSpec w tokens
                use model = HookedTransformer.FromPretrainedNoProcessing(dir)
                use logits = model.Forward(tokens)
                closeAndMeasured 1e-5 "sharded Llama logits vs reference" logits expected
            finally Directory.Delete(dir, true)

        testCase "clear errors: unsupported architecture, missing tensor, unreadable pickled weights" <| fun () ->
            let dir = tempDir "errors"
            try
                writeHubFolder dir (neoConfig.Replace("GPTNeoForCausalLM", "BloomForCausalLM")) (neoWeights ()).Tensors
                let m1 = messageOf<CheckpointException> (fun () -> HubLayoutLoader.Load(dir) |> ignore)
                Expect.stringContains m1 "BloomForCausalLM" "names the architecture"
                let w = neoWeights ()
                w.Tensors.Remove "transformer.h.1.mlp.c_fc.weight" |> ignore
                writeHubFolder dir neoConfig w.Tensors
                let m2 = messageOf<CheckpointException> (fun () -> HubLayoutLoader.Load(dir) |> ignore)
                Expect.stringContains m2 "transformer.h.1.mlp.c_fc.weight" "names the missing tensor"
                File.Delete(Path.Combine(dir, "model.safetensors"))
                File.WriteAllText(Path.Combine(dir, "pytorch_model.bin"), "")
                let m3 = messageOf<CheckpointException> (fun () -> ModelLoader.Load(dir) |> ignore)
                Expect.stringContains m3 "pytorch_model.bin: not a readable torch.save file"
                    "names the unreadable pickled file"
            finally Directory.Delete(dir, true)
    ]
