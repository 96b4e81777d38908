/// Sparse autoencoders from F#: SAELens checkpoints and Gemma Scope params.npz, spliced into a model
/// with HookedSAETransformer's semantics, features, steering and SAELens's metrics.
///
///     let sae = Sae.load "path/to/sae"                         // cfg.json + sae_weights.safetensors
///     let logits = model |> Sae.runWithSaes [ sae ] false tokens
///     let acts = model |> Sae.featureActs sae tokens           // [batch, pos, d_sae]
///     let top = acts.[0L, -1L] |> Sae.topFeatures 5
namespace Lens.FSharp

open TorchSharp
open Lens
open Lens.Sae

[<RequireQualifiedAccess>]
module Sae =
    /// A SAELens folder or a Gemma Scope params.npz folder (local, or a hub id owner/repo[/folder]), attached at its
    /// config's hook.
    let load (path: string) = Startup.ensure (); Lens.Hub.SaeHubSource.Load path

    /// The same, attached at the given hook point instead.
    let loadAt (hook: string) (path: string) = Startup.ensure (); Lens.Hub.SaeHubSource.Load(path, hook)

    /// Splices the SAE in for a `use` scope; with the error term the model's outputs are unchanged.
    let attach (useErrorTerm: bool) (sae: SparseAutoencoder) (model: HookedTransformer) =
        model.AttachSae(sae, useErrorTerm)

    /// Logits of a run with the SAEs spliced in for this run only.
    let runWithSaes (saes: SparseAutoencoder list) (useErrorTerm: bool) (tokens: torch.Tensor)
        (model: HookedTransformer) =
        // A logits-only ModelOutput holds nothing else: hand its logits to the caller.
        model.RunWithSaes(tokens, saes, useErrorTerm).Logits

    /// Logits and the cache (SAE hook points included) of a run with the SAEs spliced in; dispose the cache.
    let runWithCacheWithSaes (saes: SparseAutoencoder list) (useErrorTerm: bool) (tokens: torch.Tensor)
        (model: HookedTransformer) =
        let run = model.RunWithCacheWithSaes(tokens, saes, useErrorTerm)
        run.Logits, run.Cache

    /// hook_sae_acts_post [batch, pos, d_sae], the SAE spliced in with its error term.
    let featureActs (sae: SparseAutoencoder) (tokens: torch.Tensor) (model: HookedTransformer) =
        model.Activations(sae, tokens)

    /// The k most active features of one token's activations [d_sae], as (feature, value), largest first.
    let topFeatures (k: int) (tokenFeatures: torch.Tensor) =
        SaeFeatures.Top(tokenFeatures, k) |> Seq.map (fun f -> f.Feature, f.Value) |> List.ofSeq

    /// A hook setting a feature on hook_sae_acts_post at every position (0 ablates it).
    let setFeature (sae: SparseAutoencoder) (feature: int) (value: float) = SaeFeatures.SetFeature(sae, feature, value)

    /// A hook adding to a feature on hook_sae_acts_post at every position.
    let addToFeature (sae: SparseAutoencoder) (feature: int) (value: float) =
        SaeFeatures.AddToFeature(sae, feature, value)

    /// The k tokens whose logits the feature's decoder direction raises most and lowers most, as (token, weight).
    let topLogitTokens (k: int) (sae: SparseAutoencoder) (feature: int) (model: HookedTransformer) =
        let struct (promoted, suppressed) = model.TopLogitTokens(sae, feature, k)
        let pairs (l: seq<TokenWeight>) = l |> Seq.map (fun t -> t.Token, t.Weight) |> List.ofSeq
        pairs promoted, pairs suppressed

    /// SAELens's run_evals metrics over token batches.
    let metrics (sae: SparseAutoencoder) (batches: torch.Tensor list) (model: HookedTransformer) =
        SaeEvals.Run(model, sae, batches)

    /// Trains an SAE on the model's activations with SAELens 6.18's trainer (Lens.Sae.Training, docs/sae.md); dispose
    /// the result.
    let train (request: Lens.Sae.Training.SaeTrainingRequest) (model: HookedTransformer) =
        Lens.Sae.Training.SaeTraining.Run(model, request)

    /// Writes an SAE in SAELens's layout (cfg.json + sae_weights.safetensors), each file atomically.
    let save (dir: string) (metadata: SaeMetadata) (sae: SparseAutoencoder) = SaeCheckpoint.Save(sae, dir, metadata)

    /// What a feature dashboard shows for these features over the inputs (each [batch, pos] token ids):
    /// top-activating contexts, the activation histogram, the decoder direction's promoted / suppressed tokens.
    let featureSummaries (features: int list) (inputs: torch.Tensor list) (sae: SparseAutoencoder)
        (model: HookedTransformer) =
        FeatureSummary.Compute(model, sae, features, inputs) |> List.ofSeq

    /// A self-contained HTML dashboard of these features over the inputs (save it with `.Save path`).
    let dashboard (features: int list) (inputs: torch.Tensor list) (sae: SparseAutoencoder) (model: HookedTransformer) =
        Lens.Visualization.FeatureDashboard.Build(model, sae, features, inputs)
