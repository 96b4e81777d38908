using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>
/// SAELens's mixing buffer (training/mixing_buffer.py): chunks of activations accumulate until the
/// buffer holds at least <c>bufferSize</c> rows; the buffer is shuffled, max(1, rows / (2·batch))
/// batches are served from its front, and the rest stays to be mixed with the next chunks. The shuffle
/// draws from a generator seeded once, so a run is reproducible. Owns what it holds.
/// </summary>
public sealed class MixingBuffer : IActivationSource, IDisposable
{
    readonly Func<Tensor> _nextChunk;
    readonly int _bufferSize;
    readonly Generator _generator;
    readonly Queue<Tensor> _serving = new();
    Tensor? _storage;
    int? _batchSize;

    /// <param name="nextChunk">the next activations [m, d_in] (m may be 0); the buffer takes ownership</param>
    /// <param name="dIn">their width</param>
    /// <param name="bufferSize">rows gathered before each shuffle (at least a batch)</param>
    public MixingBuffer(Func<Tensor> nextChunk, int dIn, int bufferSize, long seed)
    {
        if (bufferSize <= 0) throw new SaeException($"the activation buffer size must be positive (got {bufferSize})");
        _nextChunk = nextChunk;
        DIn = dIn;
        _bufferSize = bufferSize;
        _generator = new Generator((ulong)seed);
    }

    public int DIn { get; }

    public Tensor NextBatch(int n)
    {
        _batchSize ??= n;
        if (n != _batchSize)
            throw new SaeException($"the mixing buffer serves batches of {_batchSize} rows; {n} asked");
        if (_bufferSize < n)
            throw new SaeException($"the activation buffer ({_bufferSize} rows) is smaller than a batch ({n}); " +
                $"SAELens requires buffer_size >= batch_size");
        int empty = 0;
        while (_serving.Count == 0)
        {
            // What the buffer keeps outlives the caller's dispose scope: it owns it.
            var chunk = _nextChunk().DetachFromDisposeScope();
            if (chunk.dim() != 2 || chunk.shape[1] != DIn)
            {
                var shape = string.Join(", ", chunk.shape);
                chunk.Dispose();
                throw new SaeException($"an activation chunk has shape [{shape}], expected [rows, {DIn}]");
            }
            if (chunk.shape[0] == 0)
            {
                chunk.Dispose();
                if (++empty > 100)
                    throw new SaeException(
                        "the activation source gave no rows 100 times in a row (are all tokens excluded?)");
                continue;
            }
            empty = 0;
            if (_storage is null) _storage = chunk;
            else
            {
                var joined = cat([_storage, chunk]).DetachFromDisposeScope();
                _storage.Dispose();
                chunk.Dispose();
                _storage = joined;
            }
            if (_storage.shape[0] >= _bufferSize) Serve(n);
        }
        return _serving.Dequeue();
    }

    void Serve(int batch)
    {
        using var order = randperm(_storage!.shape[0], generator: _generator);
        var shuffled = _storage.index_select(0, order);
        _storage.Dispose();
        long rows = shuffled.shape[0];
        long batches = Math.Max(1, rows / (2L * batch));
        for (long i = 0; i < batches; i++)
            _serving.Enqueue(shuffled.narrow(0, i * batch, batch).clone().DetachFromDisposeScope());
        _storage = shuffled.narrow(0, batches * batch, rows - batches * batch).clone().DetachFromDisposeScope();
        shuffled.Dispose();
    }

    public void Dispose()
    {
        _storage?.Dispose();
        while (_serving.Count > 0) _serving.Dequeue().Dispose();
        _generator.Dispose();
    }
}
