using System.Diagnostics.CodeAnalysis;
using System.Text;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>
/// A labelled heatmap for small score grids (layer x head induction / composition / patching scores):
/// a diverging scale centred on 0 (symmetric, reaching the largest |value| unless given), hover
/// values, a colour bar, and values printed in the cells when the grid is small. <c>WritePng</c>
/// draws the same figure as a PNG.
/// </summary>
public static partial class Heatmap
{
    /// <param name="values">[row, column]; NaN cells are grey.</param>
    /// <param name="rowLabels">One per row; 0, 1, .. when null.</param>
    /// <param name="colLabels">One per column; 0, 1, .. when null.</param>
    /// <param name="maxAbs">The |value| drawn at full colour; the largest finite |value| when null.</param>
    /// <param name="showValues">Print values in the cells; by default when there are at most 16 columns and 400
    /// cells.</param>
    public static HtmlContent Render(float[,] values, string[]? rowLabels = null, string[]? colLabels = null,
        string? title = null, float? maxAbs = null, bool? showValues = null) =>
        HtmlPage.Wrap(title ?? "Heatmap", RenderFragment(values, rowLabels, colLabels, title, maxAbs, showValues));

    public static HtmlContent RenderFragment(float[,] values, string[]? rowLabels = null, string[]? colLabels = null,
        string? title = null, float? maxAbs = null, bool? showValues = null)
    {
        var (rows, cols, scale) = Check(values, ref rowLabels, ref colLabels, maxAbs);
        var print = showValues ?? (cols <= 16 && rows * cols <= 400);
        var body = new StringBuilder(rows * cols * 120 + 1024);
        body.Append(Figure.Title(title))
            .Append(CultureInfo.InvariantCulture,
            $"<div class=\"lens-hm-wrap\"><table " +
            $"class=\"lens-hm{(print ? "" : " lens-hm-small")}\"><thead><tr><th></th>");
        // Labels are often tokens (positions in a patching sweep): show their whitespace.
        var rowText = rowLabels.Select(TokenText.Display).ToArray();
        var colText = colLabels.Select(TokenText.Display).ToArray();
        for (var c = 0; c < cols; c++)
            body.Append(CultureInfo.InvariantCulture,
                $"<th class=\"lens-hm-c\" data-c=\"{c}\">{Html.Escape(colText[c])}</th>");
        body.Append("</tr></thead><tbody>");
        for (var r = 0; r < rows; r++)
        {
            body.Append(CultureInfo.InvariantCulture,
                $"<tr><th class=\"lens-hm-r\" data-r=\"{r}\">{Html.Escape(rowText[r])}</th>");
            for (var c = 0; c < cols; c++)
            {
                var v = values[r, c];
                var color = ColorMap.DivergingFor(v, scale);
                var tip = $"{rowText[r]}, {colText[c]}: {Html.Value(v)}";
                body.Append(CultureInfo.InvariantCulture,
                    $"<td data-r=\"{r}\" data-c=\"{c}\" data-v=\"{Html.Num(v)}\" data-tip=\"{Html.Escape(tip)}\" ")
                    .Append(CultureInfo.InvariantCulture,
                    $"style=\"background:{color.Css}{(color.IsDark ? ";color:#fff" : "")}\">")
                    .Append(print ? Html.Escape(CellText(v)) : "").Append("</td>");
            }
            body.Append("</tr>");
        }
        body.Append("</tbody></table></div>")
            .Append(Figure.ColorBar(ColorMap.Diverging, -1, 1, Html.Value(-scale), Html.Value(scale), "0"));
        var id = Figure.NewId("hm");
        return Figure.Fragment(id, "lens-hm", body.ToString(), Css, Script, $"LensViz.heatmap(\"{id}\")");
    }

    public static HtmlContent Render(torch.Tensor values, string[]? rowLabels = null, string[]? colLabels = null,
        string? title = null, float? maxAbs = null, bool? showValues = null) =>
        Render(TensorArrays.ToArray2(values, nameof(values)), rowLabels, colLabels, title, maxAbs, showValues);

    public static HtmlContent RenderFragment(torch.Tensor values, string[]? rowLabels = null,
        string[]? colLabels = null, string? title = null, float? maxAbs = null, bool? showValues = null) =>
        RenderFragment(TensorArrays.ToArray2(values, nameof(values)), rowLabels, colLabels, title, maxAbs, showValues);

    /// <summary>Validates the grid and labels (filling in default labels) and finds the colour scale.</summary>
    static (int Rows, int Cols, double Scale) Check(float[,] values, [NotNull] ref string[]? rowLabels,
        [NotNull] ref string[]? colLabels, float? maxAbs)
    {
        ArgumentNullException.ThrowIfNull(values);
        int rows = values.GetLength(0), cols = values.GetLength(1);
        if (rows == 0 || cols == 0) throw new ArgumentException($"values is empty ({rows} x {cols}).", nameof(values));
        rowLabels ??= Enumerable.Range(0, rows).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        colLabels ??= Enumerable.Range(0, cols).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        if (rowLabels.Length != rows)
            throw new ArgumentException($"{rowLabels.Length} row labels for {rows} rows.", nameof(rowLabels));
        if (colLabels.Length != cols)
            throw new ArgumentException($"{colLabels.Length} column labels for {cols} columns.", nameof(colLabels));
        if (maxAbs is { } given && !(given > 0))
            throw new ArgumentException($"maxAbs must be positive, got {given}.", nameof(maxAbs));
        double scale = maxAbs ?? 0;
        if (maxAbs is null)
            foreach (var v in values)
                if (float.IsFinite(v)) scale = Math.Max(scale, Math.Abs(v));
        return (rows, cols, scale > 0 ? scale : 1);
    }

    static string CellText(double v) =>
        double.IsNaN(v)
            ? "NaN"
            : Math.Abs(v) >= 100 || (v != 0 && Math.Abs(v) < 0.01)
                ? Html.Value(v)
                : v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture);

    const string Css = """
.lens-hm .lens-hm-wrap{overflow:auto;max-width:100%}
.lens-hm table{border-collapse:collapse;font-size:11px}
.lens-hm th{font-weight:500;color:#444;padding:2px 5px;white-space:pre}
.lens-hm th.lens-hm-r{text-align:right}
.lens-hm th.hl{background:#fdd0a2}
.lens-hm td{min-width:38px;height:26px;text-align:center;border:1px solid #fff;font-variant-numeric:tabular-nums;cursor:default}
.lens-hm table.lens-hm-small td{min-width:14px;height:14px}
.lens-hm td:hover{outline:2px solid #333}
""";

    const string Script = """
if (!LensViz.heatmap) LensViz.heatmap = id => {
  const root = document.getElementById(id), table = root.querySelector('table');
  let lit = [];
  const clear = () => { lit.forEach(el => el.classList.remove('hl')); lit = []; };
  table.addEventListener('mouseover', e => {
    const td = e.target.closest('td');
    clear();
    if (!td) return;
    lit = [table.querySelector(`th[data-r="${td.dataset.r}"]`), table.querySelector(`th[data-c="${td.dataset.c}"]`)].filter(Boolean);
    lit.forEach(el => el.classList.add('hl'));
    root.dataset.hover = `${td.dataset.r},${td.dataset.c}`;
  });
  table.addEventListener('mouseleave', clear);
  LensViz.plain(id);
};
""";
}
