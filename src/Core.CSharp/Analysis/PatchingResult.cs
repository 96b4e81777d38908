using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// The metric after each activation patch: <see cref="Values"/> (float64) has one axis per entry of
/// <see cref="AxisNames"/> (e.g. layer, pos, head), and <see cref="AxisLabels"/>[a][i] names index i of
/// axis a ("0", "1", ... or component names such as resid_pre). Owns its tensor.
/// </summary>
public sealed class PatchingResult : IDisposable
{
    public PatchingResult(Tensor values, IReadOnlyList<string> axisNames,
        IReadOnlyList<IReadOnlyList<string>> axisLabels)
    {
        if (values.dim() != axisNames.Count || axisLabels.Count != axisNames.Count)
            throw new ArgumentException(
                $"a result of shape [{string.Join(", ", values.shape)}] needs one name and one label list per axis");
        for (int a = 0; a < axisNames.Count; a++)
            if (axisLabels[a].Count != values.shape[a])
                throw new ArgumentException(
                    $"axis '{axisNames[a]}' has {values.shape[a]} entries but {axisLabels[a].Count} labels");
        Values = values; AxisNames = axisNames; AxisLabels = axisLabels;
    }

    public Tensor Values { get; }
    public IReadOnlyList<string> AxisNames { get; }
    public IReadOnlyList<IReadOnlyList<string>> AxisLabels { get; }

    /// <summary>The value at one index (one entry per axis).</summary>
    public double this[params long[] index]
    {
        get
        {
            if (index.Length != AxisNames.Count)
                throw new ArgumentException(
                    $"expected {AxisNames.Count} indices ({string.Join(", ", AxisNames)}), got {index.Length}");
            using var v = Values[index];
            return v.item<double>();
        }
    }

    /// <summary>A slice of a stacked result by its first-axis label (e.g. "attn_out"), as a new result.</summary>
    public PatchingResult Select(string label)
    {
        int i = AxisLabels[0].ToList().IndexOf(label);
        if (i < 0)
            throw new KeyNotFoundException(
                $"no '{label}' on axis '{AxisNames[0]}' (have {string.Join(", ", AxisLabels[0])})");
        return new PatchingResult(Values[i].clone(), AxisNames.Skip(1).ToList(), AxisLabels.Skip(1).ToList());
    }

    public void Dispose() => Values.Dispose();

    public override string ToString() =>
        $"PatchingResult [{string.Join(", ", AxisNames.Select((n, a) => $"{n} {Values.shape[a]}"))}]";
}
