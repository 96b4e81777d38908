using System.Globalization;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>A layer x head score table for the terminal: rows L0.., columns H0.., 3 decimals.</summary>
public static class LayerHeadTable
{
    /// <param name="values">[layer, head].</param>
    /// <param name="title">The first line of the output.</param>
    public static string Render(float[,] values, string title)
    {
        ArgumentNullException.ThrowIfNull(values);
        int layers = values.GetLength(0), heads = values.GetLength(1);
        var header = new[] { "" }.Concat(Enumerable.Range(0, heads).Select(h => $"H{h}")).ToArray();
        var rows = Enumerable.Range(0, layers)
            .Select(l =>
                new[] { $"L{l}" }.Concat(Enumerable.Range(0, heads).Select(h => Format(values[l, h]))).ToArray())
            .ToArray();
        return (string.IsNullOrEmpty(title) ? "" : title + "\n") + TextTable.Render(header, rows);
    }

    public static string Render(torch.Tensor values, string title) =>
        Render(TensorArrays.ToArray2(values, nameof(values)), title);

    /// <summary>One cell as the table prints it.</summary>
    public static string Format(float v) =>
        float.IsNaN(v)
            ? "nan"
            : float.IsInfinity(v) ? (v > 0 ? "inf" : "-inf") : v.ToString("0.000", CultureInfo.InvariantCulture);
}
