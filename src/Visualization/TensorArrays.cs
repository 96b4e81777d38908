using TorchSharp;

namespace Lens.Visualization;

/// <summary>Copies a TorchSharp tensor (any device, any floating dtype) into CPU float32 .NET arrays.</summary>
internal static class TensorArrays
{
    public static float[] ToArray1(torch.Tensor t, string what)
    {
        RequireRank(t, what, 1, "[n]");
        return Flat(t);
    }

    public static float[,] ToArray2(torch.Tensor t, string what)
    {
        RequireRank(t, what, 2, "[rows, columns]");
        var a = new float[t.shape[0], t.shape[1]];
        Copy(Flat(t), a);
        return a;
    }

    /// <summary>[a, b, c]; with <paramref name="dropBatchOfOne"/> also [1, a, b, c] (a batch of one, as run_with_cache
    /// gives).</summary>
    public static float[,,] ToArray3(torch.Tensor t, string what, bool dropBatchOfOne = false)
    {
        var shape = t.shape;
        if (dropBatchOfOne && shape.Length == 4 && shape[0] == 1) shape = shape[1..];
        else RequireRank(t, what, 3, dropBatchOfOne ? "[head, query, key] (or [1, head, query, key])" : "[a, b, c]");
        var a = new float[shape[0], shape[1], shape[2]];
        Copy(Flat(t), a);
        return a;
    }

    static void RequireRank(torch.Tensor t, string what, int rank, string expected)
    {
        if (t.dim() != rank)
            throw new ArgumentException($"{what} must have shape {expected}, got [{string.Join(", ", t.shape)}].",
                what);
    }

    static float[] Flat(torch.Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        using var cpu = t.detach().cpu().to_type(torch.ScalarType.Float32).contiguous();
        return cpu.data<float>().ToArray();
    }

    static void Copy(float[] flat, Array target) => Buffer.BlockCopy(flat, 0, target, 0, flat.Length * sizeof(float));
}
