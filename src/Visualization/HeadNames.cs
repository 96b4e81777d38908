namespace Lens.Visualization;

/// <summary>TransformerLens-style head names: L{layer}H{head}.</summary>
public static class HeadNames
{
    /// <summary>["L{layer}H0", .., "L{layer}H{nHeads-1}"].</summary>
    public static string[] ForLayer(int layer, int nHeads) =>
        Enumerable.Range(0, nHeads).Select(h => $"L{layer}H{h}").ToArray();

    /// <summary>Every head of every layer, layer-major: L0H0, L0H1, .., L1H0, ...</summary>
    public static string[] ForLayers(int nLayers, int nHeads) =>
        Enumerable.Range(0, nLayers).SelectMany(l => ForLayer(l, nHeads)).ToArray();
}
