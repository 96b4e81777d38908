using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>One head and its score.</summary>
public sealed record HeadScore(int Layer, int Head, double Score)
{
    public string Label => $"L{Layer}H{Head}";
}

/// <summary>
/// A score per attention head: <see cref="Scores"/> [layer, head] (axes <see cref="AxisNames"/>),
/// what was measured (<see cref="Kind"/>) and the tokens it was measured on (a copy). Owns its tensors.
/// </summary>
public sealed class HeadScoreTable(string kind, Tensor scores, Tensor tokens) : IDisposable
{
    public string Kind { get; } = kind;
    public Tensor Scores { get; } = scores;
    public Tensor Tokens { get; } = tokens;
    public IReadOnlyList<string> AxisNames { get; } = ["layer", "head"];
    public int NLayers => (int)Scores.shape[0];
    public int NHeads => (int)Scores.shape[1];

    public double this[int layer, int head]
    {
        get
        {
            using var cell = Scores[layer, head];
            using var value = cell.to(ScalarType.Float64);
            return value.item<double>();
        }
    }

    /// <summary>Every head with its score, best first.</summary>
    public IReadOnlyList<HeadScore> Ranked()
    {
        using var cpu = Scores.to(ScalarType.Float64).cpu();
        var values = cpu.data<double>().ToArray();
        return Enumerable.Range(0, values.Length)
            .Select(i => new HeadScore(i / NHeads, i % NHeads, values[i]))
            .OrderByDescending(h => h.Score).ThenBy(h => h.Layer).ThenBy(h => h.Head).ToList();
    }

    /// <summary>The k best-scoring heads.</summary>
    public IReadOnlyList<HeadScore> Top(int k) => Ranked().Take(k).ToList();

    public void Dispose() { Scores.Dispose(); Tokens.Dispose(); }

    public override string ToString() => $"{Kind} scores [{NLayers} layers × {NHeads} heads]";
}
