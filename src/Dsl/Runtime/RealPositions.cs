using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// Reading a padded batch at each row's own positions (TransformerLens's semantics for texts of different
/// lengths, padded on the right): the last real token of each row, and which entries of an activation are real.
/// Without a mask every position is real and the last one is the last position.
/// </summary>
internal static class RealPositions
{
    /// <summary>x [batch, pos, ...] at each row's last real position → [batch, ...].</summary>
    public static Tensor AtLast(Tensor x, ExperimentInput input)
    {
        if (input.Mask is null) return x.select(1, -1);
        var index = tensor(Enumerable.Range(0, input.Batch).Select(r => (long)input.LastReal(r)).ToArray(),
            dtype: ScalarType.Int64, device: x.device);
        var shape = x.shape.ToArray();
        shape[1] = 1;
        var view = new long[x.dim()];
        Array.Fill(view, 1L);
        view[0] = input.Batch;
        return x.gather(1, index.view(view).expand(shape)).squeeze(1);
    }

    /// <summary>
    /// An analysis that reads one position (a <see cref="PositionSlice"/>) for every row, run at each row's last
    /// real position: rows are grouped by that position and each row's result (along <paramref name="rowDim"/>)
    /// comes from its own group.
    /// </summary>
    public static Tensor ByLastReal(ExperimentInput input, int rowDim, Func<PositionSlice, Tensor> at)
    {
        if (input.Mask is null) return at(PositionSlice.At(-1));
        Tensor? result = null;
        foreach (var group in Enumerable.Range(0, input.Batch).GroupBy(input.LastReal))
        {
            var part = at(PositionSlice.At(group.Key));
            var rows = tensor(group.Select(r => (long)r).ToArray(), dtype: ScalarType.Int64, device: part.device);
            result ??= zeros_like(part);
            result.index_copy_(rowDim, rows, part.index_select(rowDim, rows));
        }
        return result!;
    }
}
