using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>One pair of heads and how strongly the later reads from the earlier.</summary>
public sealed record HeadPairScore(int SourceLayer, int SourceHead, int DestLayer, int DestHead, double Score)
{
    public string Label => $"L{SourceLayer}H{SourceHead} → L{DestLayer}H{DestHead}";
}

/// <summary>
/// Composition scores of every pair of heads: <see cref="Scores"/> [layer1, head1, layer2, head2] (axes
/// <see cref="AxisNames"/>), how much head (layer2, head2) reads, through its <see cref="Mode"/> input
/// (Q, K or V), what head (layer1, head1) writes; zero where layer2 ≤ layer1. Owns its tensor.
/// </summary>
public sealed class CompositionScores(string mode, Tensor scores) : IDisposable
{
    public string Mode { get; } = mode;
    public Tensor Scores { get; } = scores;
    public IReadOnlyList<string> AxisNames { get; } = ["layer1", "head1", "layer2", "head2"];

    public double this[int layer1, int head1, int layer2, int head2]
    {
        get
        {
            using var cell = Scores[layer1, head1, layer2, head2];
            using var value = cell.to(ScalarType.Float64);
            return value.item<double>();
        }
    }

    /// <summary>Every pair with layer1 &lt; layer2, best first.</summary>
    public IReadOnlyList<HeadPairScore> Ranked()
    {
        using var cpu = Scores.to(ScalarType.Float64).cpu();
        var values = cpu.data<double>().ToArray();
        int layers = (int)Scores.shape[0], heads = (int)Scores.shape[1];
        var pairs = new List<HeadPairScore>();
        for (int l1 = 0; l1 < layers; l1++)
            for (int h1 = 0; h1 < heads; h1++)
                for (int l2 = l1 + 1; l2 < layers; l2++)
                    for (int h2 = 0; h2 < heads; h2++)
                        pairs.Add(new HeadPairScore(l1, h1, l2, h2,
                            values[((l1 * heads + h1) * layers + l2) * heads + h2]));
        return pairs.OrderByDescending(p => p.Score).ToList();
    }

    public IReadOnlyList<HeadPairScore> Top(int k) => Ranked().Take(k).ToList();

    public void Dispose() => Scores.Dispose();

    public override string ToString() => $"{Mode}-composition scores [{string.Join(", ", Scores.shape)}]";
}
