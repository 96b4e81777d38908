/// SAELens run_evals metrics (evals.py) against the SAELens 6.18 fixtures' metric.* values.
module Lens.Tests.SaeMetricsTests

open Expecto
open TorchSharp
open Lens.Sae
open Lens.Tests.TestSupport
open Lens.Tests.ParityTests
open Lens.Tests.SaeLoadingTests

let expectMetric (tol: float) (what: string) (actual: float) (expected: float) =
    let diff = abs (actual - expected)
    printfn "    %-60s %.9g vs %.9g (|diff| %.2e)" what actual expected diff
    Expect.isLessThanOrEqual diff (tol * max 1.0 (abs expected))
        (sprintf "%s: %.9g vs SAELens %.9g" what actual expected)

[<Tests>]
let metricsTests =
    testList "sae metrics" [
        for name in saeFixtures do
            testCase
                (sprintf "%s: run_evals metrics, textbook variants and feature density match SAELens within 1e-5" name)
                <| fun () ->
                let e = expectedOf name
                use model = (Oracle "gpt2like").Model()
                use sae = SparseAutoencoder.Load(saeDir name)
                let m = SaeEvals.Run(model, sae, [ e.["tokens"] ])
                let reference (key: string) = e.["metric." + key].item<float>()
                for key, value in
                    [ "l0", m.L0; "l1", m.L1; "mse", m.Mse; "explained_variance", m.ExplainedVariance
                      "explained_variance_legacy", m.ExplainedVarianceLegacy; "cossim", m.Cossim; "l2_norm_in",
                          m.L2NormIn
                      "l2_norm_out", m.L2NormOut; "l2_ratio", m.L2Ratio; "relative_reconstruction_bias",
                          m.RelativeReconstructionBias
                      "ce_loss_with_sae", m.CeLossWithSae; "ce_loss_without_sae",
                          m.CeLossWithoutSae; "ce_loss_with_ablation", m.CeLossWithAblation
                      "kl_div_with_sae", m.KlDivWithSae; "kl_div_with_ablation", m.KlDivWithAblation; "kl_div_score",
                          m.KlDivScore
                      "textbook.explained_variance", m.ExplainedVarianceCentred; "trainer.mse_loss", m.MseLoss
                      "firing_fraction", m.FiringFraction ] do
                    expectMetric 1e-5 (sprintf "%s %s" name key) value (reference key)
                // The score's denominator (CE_abl - CE_clean) is tiny on a random model (-0.03 .. -0.08 here), so the
                // components' float32 rounding (1-2 ulp of a loss near 5, from the model's forward) moves the score by
                // up to ~5e-5 relative. Check that the components agree within 2e-6 and that the score's deviation is
                // what those component deviations produce through (abl - sae) / (abl - clean), to 1e-9.
                let score = reference "ce_loss_score"
                let dAbl, dSae, dClean =
                    m.CeLossWithAblation - reference "ce_loss_with_ablation", m.CeLossWithSae - reference
                        "ce_loss_with_sae", m.CeLossWithoutSae - reference "ce_loss_without_sae"
                for d in [ dAbl; dSae; dClean ] do Expect.isLessThanOrEqual (abs d) 2e-6 "CE components within 2e-6"
                let den = reference "ce_loss_with_ablation" - reference "ce_loss_without_sae"
                let explained = abs ((dAbl - dSae) - score * (dAbl - dClean)) / abs (den + dAbl - dClean)
                let rel = abs (m.CeLossScore - score) / abs score
                printfn "    %-60s %.9g vs %.9g (rel %.2e; denominator %.4f; from the components %.2e)"
                    (name + " ce_loss_score") m.CeLossScore score rel den (explained / abs score)
                Expect.isLessThanOrEqual (abs (abs (m.CeLossScore - score) - explained)) 1e-9
                    "the score's deviation is the components' rounding, nothing else"
                // Dead latents: those that never fire on the fixture's 24 tokens.
                use fired = e.["feature_acts"].gt(torch.tensor 0.0f).any(0L).any(0L)
                let dead = int (int64 sae.Config.DSae - fired.sum().item<int64>())
                Expect.equal m.DeadFeatures dead "dead features"
                Expect.equal m.Tokens 24 "tokens"
                disposeAll e

        testCase "KL per position as evals.py _kl" <| fun () ->
            let e = expectedOf "relu-resid"
            use kl = SaeEvals.Kl(e.["logits_clean"], e.["logits_spliced"])
            expectRelative 1e-5 "kl_div_with_sae per position" kl e.["kl_div_with_sae"]
            use kla = SaeEvals.Kl(e.["logits_clean"], e.["logits_zero_ablation"])
            expectRelative 1e-5 "kl_div_with_ablation per position" kla e.["kl_div_with_ablation"]
            disposeAll e
    ]
