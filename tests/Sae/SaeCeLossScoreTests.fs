/// Why the CE-loss score differs from SAELens's by up to ~5e-5 relative while its components agree to 1 ulp
/// (issue 16): Lens aggregates the per-token losses as evals.py does (float32 mean of the concatenated losses, the
/// score in float64 from the means), bit for bit on SAELens's own losses; the rest is the forward's float32
/// round-off, which the score's tiny denominator (CE_abl − CE_clean ≈ −0.03 … −0.08 on the random model) amplifies.
/// A float64 recomputation shows SAELens's own float32 score is as far from the exact value as Lens's.
module Lens.Tests.SaeCeLossScoreTests

open Expecto
open TorchSharp
open Lens
open Lens.IO
open Lens.Sae
open Lens.Tests.ParityTests
open Lens.Tests.SaeLoadingTests

/// The runs of expected.safetensors (logits_<run>, loss_per_token_<run>) behind each CE component of evals.py.
let private components =
    [ "ce_loss_without_sae", "clean"; "ce_loss_with_sae", "spliced"; "ce_loss_with_ablation", "zero_ablation" ]

let private score (abl: float) (sae: float) (clean: float) = (abl - sae) / (abl - clean)

/// The gpt2like oracle model with every parameter in float64.
let private model64 () =
    let oracle = Oracle "gpt2like"
    let cfg = oracle.Config()
    cfg.Dtype <- "float64"
    let model = new HookedTransformer(cfg)
    use f = SafetensorsFile.Open(System.IO.Path.Combine(oracle.Dir, "weights.safetensors"))
    model.LoadStateDict(f.Names |> Seq.map (fun n -> System.Collections.Generic.KeyValuePair(n, f.Load n)), "weights")
    model

let private sae64 (sae: SparseAutoencoder) =
    let tensor name =
        match name with
        | "W_enc" -> sae.W_enc | "W_dec" -> sae.W_dec | "b_dec" -> sae.b_dec | "b_enc" -> sae.b_enc
        | "threshold" -> sae.threshold | "b_gate" -> sae.b_gate | "b_mag" -> sae.b_mag | "r_mag" -> sae.r_mag
        | other -> failwithf "unexpected SAE tensor %s" other
    let state = dict [ for n in SparseAutoencoder.StateDictNames sae.Config.Architecture -> n, (tensor n).clone() ]
    // C#'s `with` is not F#'s: the record's clone method, then its init-only Dtype.
    let config = sae.Config.GetType().GetMethod("<Clone>$").Invoke(sae.Config, [||]) :?> SaeConfig
    config.GetType().GetProperty("Dtype").SetValue(config, "float64")
    new SparseAutoencoder(config, System.Collections.Generic.Dictionary state, "float64 copy")

/// Mean next-token loss, every step in float64.
let private meanLoss64 (logits: torch.Tensor) (tokens: torch.Tensor) =
    let pos = logits.shape.[1]
    use logProbs = logits.to_type(torch.float64).log_softmax(-1L)
    use next = tokens.narrow(1L, 1L, pos - 1L).unsqueeze(-1L)
    use picked = logProbs.narrow(1L, 0L, pos - 1L).gather(-1L, next)
    -(picked.mean().item<float>())

[<Tests>]
let tests =
    testList "sae ce-loss score precision" [
        for name in saeFixtures do
            testCase
                (sprintf
                    "%s: evals.py's aggregation is reproduced bit for bit; the score's deviation is the forward's \
                     float32 round-off" name) <| fun () ->
                let e = expectedOf name
                let tokens = e.["tokens"]
                let reference (key: string) = e.["metric." + key].item<float>()
                // 1. The aggregation: float32 mean of the per-token losses, read as a double; the score in doubles.
                for metric, run in components do
                    use mean = e.["loss_per_token_" + run].mean()
                    Expect.equal (float (mean.item<float32>())) (reference metric)
                        (sprintf "%s: mean of SAELens's own per-token losses, bit for bit" metric)
                    use lensLoss = LossFunctions.LmCrossEntropy(e.["logits_" + run], tokens, true)
                    use diff = (lensLoss - e.["loss_per_token_" + run]).abs().max()
                    printfn "    %-20s %-22s per-token loss from SAELens's logits: max |diff| %.2e" name metric
                        (diff.item<float32>())
                    Expect.isLessThanOrEqual (float (diff.item<float32>())) 4.77e-7
                        "the loss of SAELens's logits within 1 ulp at 5"
                let saelensScore = reference "ce_loss_score"
                Expect.equal
                    (score (reference "ce_loss_with_ablation") (reference "ce_loss_with_sae")
                        (reference "ce_loss_without_sae")) saelensScore
                    "the score from the components, as evals.py computes it"
                // 2. Lens's run, and the same run in float64 throughout (model, SAE, loss and mean).
                use model = (Oracle "gpt2like").Model()
                use sae = SparseAutoencoder.Load(saeDir name)
                let m = SaeEvals.Run(model, sae, [ tokens ])
                use m64 = model64 ()
                use s64 = sae64 sae
                let hook = sae.HookName
                use clean = m64.Forward(tokens, ReturnType.Logits)
                use spliced =
                    m64.RunWithHooks(tokens,
                                     [ HookSpec.Named(hook,
                                                      HookFunction(fun a _ -> (s64.Forward a).reshape(a.shape))) ],
                                     ReturnType.Logits)
                use ablated =
                    m64.RunWithHooks(tokens, [ HookSpec.Named(hook, HookFunction(fun a _ -> torch.zeros_like a)) ],
                                     ReturnType.Logits)
                let c64, s64v, a64 =
                    meanLoss64 clean.Logits tokens, meanLoss64 spliced.Logits tokens, meanLoss64 ablated.Logits tokens
                let exact = score a64 s64v c64
                let lens = [ m.CeLossWithoutSae; m.CeLossWithSae; m.CeLossWithAblation ]
                let saelens = [ for metric, _ in components -> reference metric ]
                for (metric, _), (l, s), x in List.zip3 components (List.zip lens saelens) [ c64; s64v; a64 ] do
                    printfn "    %-20s %-22s float64 %.9f; SAELens %+.2e, Lens %+.2e" name metric x (s - x) (l - x)
                    // float32 forwards (any summation order) land within a few ulps (4.77e-7 at 5) of the exact loss.
                    Expect.isLessThanOrEqual (abs (l - x)) 2e-6 (sprintf "%s: Lens within 2e-6 of float64" metric)
                    Expect.isLessThanOrEqual (abs (s - x)) 2e-6 (sprintf "%s: SAELens within 2e-6 of float64" metric)
                let rel v = abs (v - exact) / abs exact
                printfn
                    "    %-20s ce_loss_score float64 %.9f (denominator %.4f): SAELens %.2e relative, Lens %.2e \
                     relative; Lens vs SAELens %.2e"
                    name exact (a64 - c64) (rel saelensScore) (rel m.CeLossScore)
                        (abs (m.CeLossScore - saelensScore) / abs saelensScore)
                // Components within 2e-6 each can move the score by at most this much; both float32 scores are inside
                // it.
                let bound = (4e-6 + abs exact * 4e-6) / (abs (a64 - c64) - 4e-6)
                Expect.isLessThanOrEqual (abs (m.CeLossScore - exact)) bound
                    "Lens's score within the float32 bound of the exact score"
                Expect.isLessThanOrEqual (abs (saelensScore - exact)) bound "SAELens's score within the same bound"
                disposeAll e
    ]
