using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>Tensors to plain arrays for results (float32 values keep their shortest text).</summary>
internal static class TensorData
{
    public static double[] Flat(Tensor t)
    {
        using var scope = NewDisposeScope();
        var cpu = t.detach().to(ScalarType.Float32).cpu().contiguous();
        return cpu.data<float>().ToArray().Select(Numbers.FromFloat).ToArray();
    }

    /// <summary>A [rows, columns] tensor as rows of doubles.</summary>
    public static double[][] Grid(Tensor t)
    {
        if (t.dim() != 2) throw new ArgumentException($"expected a 2-D tensor, got [{string.Join(", ", t.shape)}]");
        var flat = Flat(t);
        int rows = (int)t.shape[0], cols = (int)t.shape[1];
        return Enumerable.Range(0, rows).Select(r => flat.AsSpan(r * cols, cols).ToArray()).ToArray();
    }

    public static long[] Longs(Tensor t)
    {
        using var scope = NewDisposeScope();
        var cpu = t.detach().to(ScalarType.Int64).cpu().contiguous();
        return cpu.data<long>().ToArray();
    }
}
