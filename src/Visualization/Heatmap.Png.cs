using TorchSharp;

namespace Lens.Visualization;

/// <summary>A heatmap drawn as a PNG, and where its grid lies (to find a cell's pixels).</summary>
public sealed record HeatmapPng(byte[] Bytes, int Width, int Height, int GridLeft, int GridTop, int CellSize)
{
    /// <summary>The pixel at the centre of cell (row, col).</summary>
    public (int X, int Y) CellCenter(int row, int col) =>
        (GridLeft + col * CellSize + CellSize / 2, GridTop + row * CellSize + CellSize / 2);
}

public static partial class Heatmap
{
    static readonly Rgb Ink = new(40, 40, 40);
    static readonly Rgb BarFrame = new(150, 150, 150);

    /// <summary>
    /// Draws the heatmap as a PNG (for READMEs and papers): square cells of <paramref name="cellSize"/>
    /// pixels on the same diverging scale as <see cref="Render(float[,], string[], string[], string, float?, bool?)"/>,
    /// row and column labels, an optional title and a vertical colour bar, all in a built-in 5x7 pixel font.
    /// </summary>
    public static HeatmapPng EncodePng(float[,] values, string[]? rowLabels = null, string[]? colLabels = null,
        string? title = null, int cellSize = 40, float? maxAbs = null)
    {
        if (cellSize < 2 || cellSize > 400)
            throw new ArgumentException($"cellSize must be 2..400 pixels, got {cellSize}.", nameof(cellSize));
        var (rows, cols, scale) = Check(values, ref rowLabels, ref colLabels, maxAbs);
        const int pad = 14, labelGap = 8, barGap = 18, barWidth = 16;
        var ls = cellSize >= 28 ? 2 : 1;                     // label scale
        var lh = PixelFont.Height(ls);
        var titleHeight = string.IsNullOrWhiteSpace(title) ? 0 : PixelFont.Height(2) + 12;
        var rowLabelWidth = rowLabels.Max(l => PixelFont.Width(l, ls));
        var colLabelWidth = colLabels.Max(l => PixelFont.Width(l, ls));
        var rotate = colLabelWidth > cellSize - 4;
        var colLabelHeight = rotate ? colLabelWidth : lh;
        string[] barLabels = [Html.Value(scale), "0", Html.Value(-scale)];
        var barLabelWidth = barLabels.Max(l => PixelFont.Width(l, ls));

        int gridW = cols * cellSize, gridH = rows * cellSize, barH = Math.Max(gridH, 120);
        var gridLeft = pad + rowLabelWidth + labelGap;
        var gridTop = pad + titleHeight + colLabelHeight + labelGap;
        var barLeft = gridLeft + gridW + barGap;
        var width = Math.Max(barLeft + barWidth + 6 + barLabelWidth + pad, 2 * pad + PixelFont.Width(title ?? "", 2));
        var height = gridTop + Math.Max(gridH, barH) + pad;
        if ((long)width * height > 100_000_000)
            throw new ArgumentException($"the PNG would be {width} x {height} pixels; use a smaller cellSize.",
                nameof(cellSize));

        var img = new RgbImage(width, height);
        if (titleHeight > 0) PixelFont.Draw(img, title!, pad, pad, 2, Ink);
        var gap = cellSize >= 8 ? 1 : 0; // a white hairline between cells
        for (var r = 0; r < rows; r++)
        {
            var y = gridTop + r * cellSize;
            PixelFont.Draw(img, rowLabels[r], gridLeft - labelGap - PixelFont.Width(rowLabels[r], ls),
                y + (cellSize - lh) / 2, ls, Ink);
            for (var c = 0; c < cols; c++)
                img.Fill(gridLeft + c * cellSize, y, cellSize - gap, cellSize - gap,
                    ColorMap.DivergingFor(values[r, c], scale));
        }
        for (var c = 0; c < cols; c++)
        {
            var x = gridLeft + c * cellSize;
            if (rotate) PixelFont.DrawUp(img, colLabels[c], x + (cellSize - lh) / 2, gridTop - labelGap, ls, Ink);
            else
                PixelFont.Draw(img, colLabels[c], x + (cellSize - PixelFont.Width(colLabels[c], ls)) / 2,
                    gridTop - labelGap - lh, ls, Ink);
        }
        for (var j = 0; j < barH; j++)
            img.Fill(barLeft, gridTop + j, barWidth, 1, ColorMap.Diverging(1 - 2.0 * j / (barH - 1)));
        img.Frame(barLeft - 1, gridTop - 1, barWidth + 2, barH + 2, BarFrame);
        var labelX = barLeft + barWidth + 6;
        PixelFont.Draw(img, barLabels[0], labelX, gridTop, ls, Ink);
        PixelFont.Draw(img, barLabels[1], labelX, gridTop + (barH - lh) / 2, ls, Ink);
        PixelFont.Draw(img, barLabels[2], labelX, gridTop + barH - lh, ls, Ink);
        return new HeatmapPng(img.ToPng(), width, height, gridLeft, gridTop, cellSize);
    }

    /// <summary><see cref="EncodePng"/> written to <paramref name="path"/> (folders created as needed).</summary>
    public static HeatmapPng WritePng(string path, float[,] values, string[]? rowLabels = null,
        string[]? colLabels = null, string? title = null, int cellSize = 40, float? maxAbs = null)
    {
        var png = EncodePng(values, rowLabels, colLabels, title, cellSize, maxAbs);
        Lens.IO.AtomicFile.WriteAllBytes(path, png.Bytes);
        return png;
    }

    public static HeatmapPng WritePng(string path, torch.Tensor values, string[]? rowLabels = null,
        string[]? colLabels = null, string? title = null, int cellSize = 40, float? maxAbs = null) =>
        WritePng(path, TensorArrays.ToArray2(values, nameof(values)), rowLabels, colLabels, title, cellSize, maxAbs);
}
