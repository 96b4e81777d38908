using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>Attribution patching beside the activation patching it estimates (both as metric changes), with their
/// correlations. Owns both results.</summary>
public sealed class AttributionComparison : IDisposable
{
    public AttributionComparison(PatchingResult attribution, PatchingResult activationPatching)
    {
        Attribution = attribution;
        ActivationPatching = activationPatching;
        var a = Flat(attribution.Values);
        var p = Flat(activationPatching.Values);
        Pearson = Correlation.Pearson(a, p);
        Spearman = Correlation.Spearman(a, p);
    }

    public PatchingResult Attribution { get; }
    public PatchingResult ActivationPatching { get; }
    public double Pearson { get; }
    public double Spearman { get; }

    static double[] Flat(Tensor t)
    {
        using var c = t.detach().cpu().to(ScalarType.Float64).flatten();
        return c.data<double>().ToArray();
    }

    public void Dispose() { Attribution.Dispose(); ActivationPatching.Dispose(); }
}
