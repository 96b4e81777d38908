using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `print HOOK`'s statistics over entries that come in chunks of rows, combined exactly as over one tensor: counts,
/// means and sums of squared deviations in float64 with Chan, Golub and LeVeque's pairwise formula (no cancellation as
/// with sums of squares), minimum and maximum, the sum of squares for the norm, and the first 8 entries in order. With
/// one chunk the numbers are torch's own (mean, std, norm), as they were before chunking.
/// </summary>
internal sealed class ActivationStatistics
{
    long count;
    double mean, squaredDeviations, sumOfSquares, torchStd, torchNorm;
    int chunks;
    readonly List<double> first = [];

    public double Min { get; private set; } = double.PositiveInfinity;
    public double Max { get; private set; } = double.NegativeInfinity;

    public double Mean => mean;

    /// <summary>The sample standard deviation (n − 1, torch's default), 0 for a single entry.</summary>
    public double Std => chunks == 1 ? torchStd : count > 1 ? Math.Sqrt(squaredDeviations / (count - 1)) : 0;

    public double Norm => chunks == 1 ? torchNorm : Math.Sqrt(sumOfSquares);

    public double[] First => [.. first];

    /// <summary>Adds a chunk's entries: a float64 tensor of one dimension, in the order one batch would flatten
    /// them.</summary>
    public void Add(Tensor x)
    {
        long n = x.numel();
        if (n == 0) return;
        using var scope = NewDisposeScope();
        double m = x.mean().item<double>();
        double deviations = (x - m).square().sum().item<double>();
        if (chunks == 0)
        {
            torchStd = n > 1 ? x.std().item<double>() : 0;
            torchNorm = x.norm().item<double>();
        }
        if (count == 0) (mean, squaredDeviations) = (m, deviations);
        else
        {
            double delta = m - mean, total = count + n;
            squaredDeviations += deviations + delta * delta * (count * (n / total));
            mean += delta * (n / total);
        }
        count += n;
        sumOfSquares += x.square().sum().item<double>();
        Min = Math.Min(Min, x.min().item<double>());
        Max = Math.Max(Max, x.max().item<double>());
        if (first.Count < 8) first.AddRange(TensorData.Flat(x.narrow(0, 0, Math.Min(8 - first.Count, n))));
        chunks++;
    }
}
