using Lens.Datasets;
using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>
/// Training activations read from one hook column of an activation dataset on disk (<c>lens harvest</c>), shuffled
/// through the dataset reader's seeded buffer (SAELens's mixing buffer). The dataset is finite: a run that asks
/// for more tokens than it holds is refused before training starts (<see cref="Check"/>), not cycled silently.
/// </summary>
public sealed class DatasetActivations : IActivationSource, IDisposable
{
    readonly IEnumerator<Tensor> batches;
    readonly string description;
    Tensor? pending;

    /// <param name="dataset">a harvested dataset (or a folder of its shards)</param>
    /// <param name="hook">a hook column, e.g. <c>blocks.0.hook_resid_post</c></param>
    /// <param name="batchTokens">the reader's batch size: the trainer's train_batch_size_tokens reads one batch per
    /// step</param>
    public DatasetActivations(ActivationDataset dataset, string hook, int batchTokens, int seed,
        int bufferTokens = 65536)
    {
        var column = dataset.Column(hook);
        int context = dataset.Column("token_ids").Shape[0];
        if (column.Shape.Length < 2 || column.Shape[0] != context)
            throw new SaeException($"dataset '{dataset.Path}': column '{hook}' has rows of shape " +
                $"[{string.Join(", ", column.Shape)}], not [pos = {context}, d...]");
        DIn = column.ValuesPerRow / context;
        Tokens = dataset.RowCount * context;
        description = $"dataset '{dataset.Path}', column '{hook}'";
        batches =
            dataset.ActivationBatches(hook, batchTokens, seed, Math.Max(bufferTokens, 2 * batchTokens)).GetEnumerator();
    }

    public int DIn { get; }

    /// <summary>Activations the dataset holds: rows × context positions.</summary>
    public long Tokens { get; }

    /// <summary>Refuses a run that needs more activations than the dataset holds.</summary>
    public void Check(SaeTrainingOptions options)
    {
        if (options.TrainingTokens > Tokens)
            throw new SaeException($"training_tokens {options.TrainingTokens} is more than the {Tokens} activations " +
                $"in {description}: harvest more rows or train on fewer tokens");
    }

    /// <summary>The next <paramref name="n"/> activations, carrying what a reader batch has left over to the next
    /// call.</summary>
    public Tensor NextBatch(int n)
    {
        var parts = new List<Tensor>();
        try
        {
            long have = 0;
            while (have < n)
            {
                if (pending is null)
                {
                    if (!batches.MoveNext())
                        throw new SaeException($"{description} ran out of activations: it holds {Tokens}");
                    pending = batches.Current;
                }
                long take = Math.Min(n - have, pending.shape[0]);
                using (var head = pending.narrow(0, 0, take)) parts.Add(head.clone());
                have += take;
                if (take == pending.shape[0]) { pending.Dispose(); pending = null; }
                else
                {
                    using var tail = pending.narrow(0, take, pending.shape[0] - take);
                    var rest = tail.clone();
                    pending.Dispose();
                    pending = rest;
                }
            }
            return parts.Count == 1 ? parts[0].alias() : cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    public void Dispose() { batches.Dispose(); pending?.Dispose(); }
}
