/// The shipped demo SAE (models/demo-attn-only-2l-sae, trained by Lens on demo-attn-only-2l): its
/// SAELens metrics, the previous-token feature and its evidence, and its recipe's first steps to the bit.
module Lens.Tests.DemoSaeTests

open System
open System.IO
open Expecto
open TorchSharp
open Lens
open Lens.Demo
open Lens.Sae
open Lens.Sae.Training
open Lens.Tests.TestSupport

let saeFolder = Path.Combine(repoRoot, DemoSaeRecipe.Folder)

let private firstSteps = 20
/// Recorded by running this test once on the 2-core development machine (AMD EPYC, AVX2, one torch thread). It is
/// StateDictChecksum (each tensor's name, dtype and shape, then its bytes), the checksum `lens run` records for a
/// model.
let private recordedSha256 = "0aa5492157e27ebbc62d6df21eabc28a860dd800669b9214ea73258c25f197e1"

let private firstStepsTest =
    testCase
        $"the demo SAE's recipe: its first {firstSteps} steps give the recorded weights to the bit (one torch thread)"
        <| fun () ->
        let threads = torch.get_num_threads ()
        torch.set_num_threads 1
        try
            use model = ModelLoader.Load "demo-attn-only-2l"
            use r = SaeTraining.Run(model, DemoSaeRecipe.Request(Nullable firstSteps))
            let hash = StateDictChecksum.Sha256(r.Sae.StateDict())
            printfn "demo SAE: sha256 of the weights after %d steps: %s (%.1f s)" firstSteps hash r.Elapsed.TotalSeconds
            Expect.equal hash recordedSha256
                ($"`{DemoSaeRecipe.Command}` with --training-tokens {firstSteps * DemoSaeRecipe.BatchTokens} "
                 + "computes these weights; on another CPU the kernels may round differently")
        finally torch.set_num_threads threads

[<Tests>]
let tests =
    testList "demo sae" [
        testCase ("the demo SAE loads as SAELens's topk SAE at blocks.0.hook_resid_post, its cfg.json recording how it "
                  + "was trained") <| fun () ->
            use sae = SparseAutoencoder.Load saeFolder
            Expect.equal sae.Config.Architecture "topk" "topk"
            Expect.equal (sae.Config.DIn, sae.Config.DSae, sae.Config.K) (64, 256, 8) "64 → 256, k 8"
            Expect.equal sae.HookName DemoSaeRecipe.Hook "hook"
            Expect.isLessThanOrEqual (FileInfo(Path.Combine(saeFolder, "sae_weights.safetensors"))).Length 200_000L
                "small enough to commit"
            use model = ModelLoader.Load "demo-attn-only-2l"
            let written = File.ReadAllText(Path.Combine(saeFolder, "cfg.json"))
            Expect.equal written (SaeCheckpoint.ConfigJson(sae.Config, DemoSaeRecipe.Request().Metadata(model)))
                "the recipe's config and metadata"

        testCase ("the demo SAE's SAELens metrics on repeated random tokens (BOS excluded): L0, explained variance, "
                  + "CE-loss score") <| fun () ->
            use model = ModelLoader.Load "demo-attn-only-2l"
            use sae = SparseAutoencoder.Load saeFolder
            use rep = Analysis.RepeatedTokens.ForModel(model, 50, 2, 8, 0UL)
            let m = SaeEvals.Run(model, sae, [ rep.Tokens ], [ 50256L ])
            printfn
                "demo SAE: l0 %.4f explained_variance %.4f (centred %.4f) mse_loss %.4f ce_loss_score %.4f (CE clean \
                 %.4f, with SAE %.4f, zero-ablated %.4f) kl_div_score %.4f dead %d dense %d"
                m.L0 m.ExplainedVariance m.ExplainedVarianceCentred m.MseLoss m.CeLossScore m.CeLossWithoutSae
                    m.CeLossWithSae m.CeLossWithAblation m.KlDivScore m.DeadFeatures m.DenseFeatures
            Expect.floatClose Accuracy.low m.L0 8.0 "L0 as recorded in docs/sae.md"
            Expect.floatClose Accuracy.low m.ExplainedVariance 0.833823 "explained variance (SAELens's run_evals value)"
            Expect.floatClose Accuracy.low m.ExplainedVarianceCentred 0.829941 "explained variance (centred)"
            Expect.floatClose Accuracy.low m.CeLossScore 0.271322 "CE-loss score"
            Expect.isLessThanOrEqual m.L0 8.0 "TopK: at most k"

        testCase ("one latent is a previous-token feature feeding the induction head: η², decoder in L0H2's output, "
                  + "K-composition into L1H1, ablation") <| fun () ->
            use model = ModelLoader.Load "demo-attn-only-2l"
            use sae = SparseAutoencoder.Load saeFolder
            let e = DemoSaeFeature.Find(model, sae)
            printfn
                "demo SAE feature %d: density %.3f; eta2 previous token %.3f, current token %.3f (chance %.3f); \
                 decoder %.3f in L0H%d's output space (random %.2f); K-composition into L1H%d %.2fx a random \
                 direction; at its %d firing keys L1H%d's induction attention %.3f -> %.3f when zeroed (elsewhere %.3f \
                 -> %.3f), loss of the predictions reading them %.3f -> %.3f"
                e.Feature e.Density e.EtaPrevious e.EtaCurrent e.EtaChance e.DecoderInHeadOutput e.PreviousTokenHead
                    e.HeadOutputShareOfRandom e.InductionHead e.KCompositionVsRandom
                e.FiringKeys e.InductionHead e.InductionAttentionAtFiringKeys e.InductionAttentionAtFiringKeysAblated
                    e.InductionAttentionElsewhere e.InductionAttentionElsewhereAblated
                e.LossAtFiringQueries e.LossAtFiringQueriesAblated
            Expect.equal e.Feature 79 "the feature docs/sae.md describes"
            Expect.isGreaterThan e.EtaPrevious 0.5 "the previous token explains over half of its variance"
            Expect.isLessThan (e.EtaCurrent * 3.0) e.EtaPrevious "the current token far less"
            Expect.isGreaterThan e.DecoderInHeadOutput 0.7
                "its decoder direction lies mostly in the previous-token head's output space (a random direction: 0.25)"
            Expect.isGreaterThan e.KCompositionVsRandom 1.5
                "the induction head's keys read it more than a random direction"
            Expect.isLessThan e.InductionAttentionAtFiringKeysAblated e.InductionAttentionAtFiringKeys
                "zeroing it lowers the induction attention to the keys where it fires"
            Expect.isGreaterThan e.LossAtFiringQueriesAblated e.LossAtFiringQueries ("and raises the loss of the "
                                                                                     + "predictions that read them")
            Expect.isLessThan (abs (e.InductionAttentionElsewhereAblated - e.InductionAttentionElsewhere)) 0.002
                "elsewhere the attention barely moves"

        testSequenced firstStepsTest
    ]
