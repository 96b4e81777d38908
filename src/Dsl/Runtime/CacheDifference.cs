using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>How far a run's activation is from a saved one, as `cache load` reports it.</summary>
internal static class CacheDifference
{
    /// <summary>The largest |now − saved| (NaN when the shapes differ); equal entries differ by 0, masked attention
    /// scores (−inf in both) included.</summary>
    public static double Max(Tensor now, Tensor saved)
    {
        if (!saved.shape.SequenceEqual(now.shape)) return double.NaN;
        using var scope = NewDisposeScope();
        var a = now.to(ScalarType.Float64);
        var b = saved.to(ScalarType.Float64).to(now.device);
        return where(a.eq(b), zeros_like(a), (a - b).abs()).max().item<double>();
    }
}
