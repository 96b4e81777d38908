/// Activation datasets from F#: harvest a model's activations over a corpus into a Hugging Face datasets folder
/// (sharded and resumable), merge shards, and stream a hook's activations back as [n, d_in] batches.
///
///     let options = Datasets.options "corpus.txt" [ "blocks.*.hook_resid_post" ] 128 "acts"
///     let result = model |> Datasets.harvest "demo-attn-only-2l" options
///     let data = Datasets.openDataset "acts"
///     for batch in data |> Datasets.activationBatches "blocks.1.hook_resid_post" 4096 (Some 42) do
///         use batch = batch                                         // float32 [4096, d_model]
///         ...
namespace Lens.FSharp

open Lens
open Lens.Datasets

[<RequireQualifiedAccess>]
module Datasets =
    /// Options with the defaults (batch 32, float32, no token cap, one shard, 500 MB files).
    let options (corpus: string) (hooks: string list) (context: int) (out: string) =
        HarvestOptions(corpus, List.toArray hooks, context, out)

    /// Shard I of N of the same harvest: contiguous ranges of batches, written to out/shard-I-of-N.
    let shard (index: int) (count: int) (options: HarvestOptions) =
        HarvestOptions(options.Corpus, options.Hooks, options.Context, options.Out, options.Batch, options.Dtype,
                       options.MaxTokens, index, count, options.MaxFileBytes)

    /// Runs (or resumes, or finds complete) the harvest; modelId is recorded and checked on a rerun.
    let harvest (modelId: string) (options: HarvestOptions) (model: HookedTransformer) =
        ActivationHarvest.Run(model, modelId, options)

    /// Joins the complete shards under shardsFolder into one dataset equal to the single-process run's.
    let merge (shardsFolder: string) (out: string) = HarvestMerge.Run(shardsFolder, out)

    /// A dataset folder, or a folder of complete shards read as one dataset.
    let openDataset (path: string) = ActivationDataset.Open path

    /// A hook's activations as float32 [n, d_in] batches (positions of every row); with a seed, shuffled through a
    /// buffer. Dispose each batch.
    let activationBatches (hook: string) (batchTokens: int) (seed: int option) (dataset: ActivationDataset) =
        dataset.ActivationBatches(hook, batchTokens, Option.toNullable seed)

    /// One column's rows in order, [rows, shape...] as stored.
    let rowBatches (column: string) (rows: int) (dataset: ActivationDataset) = dataset.RowBatches(column, rows)
