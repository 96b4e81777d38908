using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

/// <summary>Where training batches come from: int64 tokens [batch, pos], drawn with the run's generator.</summary>
public interface IBatchSource
{
    Tensor NextBatch(int batchSize, Generator generator);
}

/// <summary>Batches of rows drawn uniformly (with replacement) from a fixed dataset of token sequences [n,
/// pos].</summary>
public sealed class TensorBatches : IBatchSource
{
    readonly Tensor _rows;
    public TensorBatches(Tensor rows)
    {
        if (rows.dim() != 2 || rows.shape[0] == 0 || rows.shape[1] < 2)
            throw new ArgumentException(
                $"a dataset is int64 token rows [n, pos >= 2] (got shape [{string.Join(", ", rows.shape)}])");
        if (rows.dtype != ScalarType.Int64)
            throw new ArgumentException($"dataset tokens must be int64 (got {rows.dtype})");
        _rows = rows;
    }
    public Tensor NextBatch(int batchSize, Generator generator)
    {
        using var index = randint(_rows.shape[0], [batchSize], dtype: ScalarType.Int64, generator: generator);
        return _rows.index_select(0, index);
    }
}

/// <summary>Batches from a function of the step's generator (a synthetic curriculum).</summary>
public sealed class GeneratedBatches(Func<int, Generator, Tensor> draw) : IBatchSource
{
    public Tensor NextBatch(int batchSize, Generator generator) => draw(batchSize, generator);
}
