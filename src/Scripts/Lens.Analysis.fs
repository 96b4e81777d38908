/// Analyses as F# functions returning plain F# data (arrays, records, lists), for scripts and fsi.
namespace Lens.FSharp

open TorchSharp
open Lens
open Lens.Analysis

/// One head's score.
type HeadScore = { Layer: int; Head: int; Score: float }

module internal Convert =
    let toArray2D (t: torch.Tensor) =
        use c = t.detach().cpu().to_type(torch.float64)
        let rows, cols = int c.shape.[0], int c.shape.[1]
        let flat = c.data<float>().ToArray()
        Array2D.init rows cols (fun r k -> flat.[r * cols + k])

    let ranked (table: float[,]) =
        [ for l in 0 .. Array2D.length1 table - 1 do
            for h in 0 .. Array2D.length2 table - 1 -> { Layer = l; Head = h; Score = table.[l, h] } ]
        |> List.sortByDescending (fun s -> s.Score)

/// Repeated random token inputs (BOS + n random tokens repeated), from Lens's own seeded generator.
module Repeated =
    /// `tokens n batch seed model`: BOS + n random ids + the same n again, batch rows, over the model's
    /// vocabulary (or the curriculum range its config records).
    let tokens (n: int) (batch: int) (seed: uint64) (model: HookedTransformer) =
        RepeatedTokens.ForModel(model, n, 2, batch, seed)

/// Stripe head scores [layer, head] on repeated random tokens, as TransformerLens's main demo computes them.
module Scores =
    let induction (rep: RepeatedTokens) (model: HookedTransformer) =
        use t = HeadScores.Induction(model, rep) in Convert.toArray2D t.Scores
    let previousToken (rep: RepeatedTokens) (model: HookedTransformer) =
        use t = HeadScores.PreviousToken(model, rep) in Convert.toArray2D t.Scores
    let duplicateToken (rep: RepeatedTokens) (model: HookedTransformer) =
        use t = HeadScores.DuplicateToken(model, rep) in Convert.toArray2D t.Scores
    /// Induction scores on any tokens [batch, pos] whose rows are a block repeated (e.g. [BOS; 5; 9; 7; 5; 9; 7]), the
    /// block length found per row; a row that is not a repeat is an error naming it.
    let inductionOn (tokens: torch.Tensor) (model: HookedTransformer) =
        use t = HeadScores.Induction(model, tokens) in Convert.toArray2D t.Scores
    /// Duplicate-token scores on any tokens whose rows are a block repeated.
    let duplicateTokenOn (tokens: torch.Tensor) (model: HookedTransformer) =
        use t = HeadScores.DuplicateToken(model, tokens) in Convert.toArray2D t.Scores
    /// TransformerLens's detect_head with its defaults ("mul", BOS and current token included).
    let detect (pattern: string) (tokens: torch.Tensor) (model: HookedTransformer) =
        use t = HeadDetector.DetectHead(model, tokens, pattern) in Convert.toArray2D t
    /// The heads, best first.
    let ranked (table: float[,]) = Convert.ranked table
    let top k (table: float[,]) = Convert.ranked table |> List.truncate k

/// Weight-based circuit analysis.
module Circuits =
    /// all_composition_scores: mode "Q", "K" or "V", indexed [layer1, head1, layer2, head2].
    let composition (mode: string) (model: HookedTransformer) =
        use s = Composition.AllScores(model, mode)
        use c = s.Scores.cpu().to_type(torch.float64)
        let shape = c.shape |> Array.map int
        let flat = c.data<float>().ToArray()
        Array4D.init shape.[0] shape.[1] shape.[2] shape.[3] (fun a b d e ->
            flat.[((a * shape.[1] + b) * shape.[2] + d) * shape.[3] + e])
    /// The OV circuit of one head, kept factored.
    let ov layer head (model: HookedTransformer) = Circuits.FullOvCircuit(model, layer, head)
    /// Copying score of every head's full OV circuit [layer, head].
    let copyingScores (model: HookedTransformer) =
        use t = Composition.FullOvCopyingScores model in Convert.toArray2D t

/// Ablations as data, applied for one forward pass.
module Ablate =
    let head layer head = AblationTarget.Head(layer, head) :> AblationTarget
    let mlp layer = AblationTarget.Mlp layer :> AblationTarget
    let layer l = AblationTarget.AttentionLayer l :> AblationTarget
    let neuron layer index = AblationTarget.Neuron(layer, index) :> AblationTarget
    let zero target = Ablation.Zero target
    let mean (reference: torch.Tensor) target = Ablation.Mean(target, reference)
    let resample (source: torch.Tensor) seed target = Ablation.Resample(target, source, seed)
    /// Mean loss with the ablations applied.
    let loss (ablations: Ablation list) (tokens: torch.Tensor) (model: HookedTransformer) =
        use out = Ablation.Run(model, tokens, ablations, ReturnType.Loss)
        out.Loss.item<float32>() |> float
    /// Loss per position [batch, pos - 1] with the ablations applied.
    let lossPerToken (ablations: Ablation list) (tokens: torch.Tensor) (model: HookedTransformer) =
        use out = Ablation.Run(model, tokens, ablations, ReturnType.Loss, true)
        out.Loss.clone()

/// Activation patching (TransformerLens's patching module) with an F# metric over logits.
module Patch =
    let private fn (metric: torch.Tensor -> float) = System.Func<torch.Tensor, float>(metric)
    let residPre (metric: torch.Tensor -> float) (cleanCache: ActivationCache) (corrupted: torch.Tensor)
        (model: HookedTransformer) =
        Patching.ResidPre(model, corrupted, cleanCache, fn metric)
    let headsAllPos (metric: torch.Tensor -> float) (cleanCache: ActivationCache) (corrupted: torch.Tensor)
        (model: HookedTransformer) =
        Patching.AttnHeadOutAllPos(model, corrupted, cleanCache, fn metric)
    let everyBlock (metric: torch.Tensor -> float) (cleanCache: ActivationCache) (corrupted: torch.Tensor)
        (model: HookedTransformer) =
        Patching.GetActPatchBlockEvery(model, corrupted, cleanCache, fn metric)

/// Attribution patching: the clean run and the corrupted run's gradients once, then any split of any
/// activation; `compare` adds the true activation patching and the correlations.
module Attribution =
    /// `run metric clean corrupted model`: dispose the result when done.
    let run (metric: torch.Tensor -> torch.Tensor) (clean: torch.Tensor) (corrupted: torch.Tensor)
        (model: HookedTransformer) =
        AttributionPatching.Run(model, clean, corrupted, System.Func<torch.Tensor, torch.Tensor> metric)
    /// Estimated metric change per index, e.g. `attribute "z" [ "layer"; "head" ]`.
    let attribute (activation: string) (axes: string list) (ap: AttributionPatching) =
        ap.Attribute(activation, Array.ofList axes)
    /// Every head's output over all positions, as a [layer, head] table.
    let heads (ap: AttributionPatching) = use r = ap.AttnHeadOutAllPos() in Convert.toArray2D r.Values
    /// Attribution beside activation patching: (attribution, patching effect, Pearson, Spearman) for a [layer, x]
    /// split.
    let compare (activation: string) (axes: string list) (ap: AttributionPatching) =
        use c = ap.Compare(activation, Array.ofList axes)
        c.Attribution.Values.clone(), c.ActivationPatching.Values.clone(), c.Pearson, c.Spearman
