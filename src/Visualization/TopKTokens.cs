using System.Text;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>
/// CircuitsVis <c>topk_tokens</c>-style table: one row per position (its token), then the top-k
/// predicted tokens, each cell shaded by its value. Values in [0, 1] are taken as probabilities
/// (absolute scale); anything else (logits) is shaded from the table's minimum to its maximum.
/// </summary>
public static class TopKTokens
{
    /// <param name="tokens">The input tokens, one per position.</param>
    /// <param name="topTokens">Per position, the predicted tokens, best first.</param>
    /// <param name="topValues">Per position, their values (probabilities or logits), same shape as
    /// <paramref name="topTokens"/>.</param>
    public static HtmlContent Render(string[] tokens, string[][] topTokens, float[][] topValues,
        string? title = null) =>
        HtmlPage.Wrap(title ?? "Top-k tokens", RenderFragment(tokens, topTokens, topValues, title));

    public static HtmlContent RenderFragment(string[] tokens, string[][] topTokens, float[][] topValues,
        string? title = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(topTokens);
        ArgumentNullException.ThrowIfNull(topValues);
        if (topTokens.Length != tokens.Length || topValues.Length != tokens.Length)
            throw new ArgumentException(
                $"{tokens.Length} tokens but top tokens for {topTokens.Length} positions and values " +
                    $"for {topValues.Length}.", nameof(topTokens));
        for (var i = 0; i < tokens.Length; i++)
            if (topTokens[i].Length != topValues[i].Length)
                throw new ArgumentException($"position {i}: {topTokens[i].Length} top tokens " +
                    $"but {topValues[i].Length} values.", nameof(topValues));
        var k = topTokens.Select(r => r.Length).DefaultIfEmpty(0).Max();

        var finite = topValues.SelectMany(r => r).Where(float.IsFinite).ToArray();
        double lo = 0, hi = 1;
        if (finite.Length > 0 && (finite.Min() < 0 || finite.Max() > 1)) (lo, hi) = (finite.Min(), finite.Max());
        if (hi <= lo) hi = lo + 1;

        var body = new StringBuilder();
        body.Append(Figure.Title(title))
            .Append("<div class=\"lens-tk-wrap\"><table class=\"lens-tk\"><thead><tr><th>pos</th><th>token</th>");
        for (var r = 0; r < k; r++) body.Append(CultureInfo.InvariantCulture, $"<th>#{r + 1}</th>");
        body.Append("</tr></thead><tbody>");
        for (var i = 0; i < tokens.Length; i++)
        {
            body.Append(CultureInfo.InvariantCulture,
                $"<tr><td class=\"lens-tk-pos\">{i}</td><td>{Figure.Token(tokens[i])}</td>");
            for (var r = 0; r < k; r++)
            {
                if (r >= topTokens[i].Length) { body.Append("<td></td>"); continue; }
                var v = topValues[i][r];
                var c = double.IsNaN(v) ? ColorMap.Missing : ColorMap.Sequential((v - lo) / (hi - lo));
                var tip = $"position {i} \"{TokenText.Display(tokens[i])}\", #{r + 1}: " +
                    $"\"{TokenText.Display(topTokens[i][r])}\" {Html.Value(v)}";
                body.Append(CultureInfo.InvariantCulture,
                    $"<td class=\"lens-tk-cell\" style=\"background:{c.Css}{(c.IsDark ? ";color:#fff" : "")}\" " +
                    $"data-tip=\"{Html.Escape(tip)}\">")
                    .Append(CultureInfo.InvariantCulture,
                    $"<span class=\"lens-tk-tok\">{Html.Escape(TokenText.Display(topTokens[i][r]))}</span>")
                    .Append(CultureInfo.InvariantCulture,
                    $"<span class=\"lens-tk-val\">{Html.Escape(Html.Value(v))}</span></td>");
            }
            body.Append("</tr>");
        }
        body.Append("</tbody></table></div>")
            .Append(Figure.ColorBar(ColorMap.Sequential, 0, 1, Html.Value(lo), Html.Value(hi)));
        var id = Figure.NewId("tk");
        return Figure.Fragment(id, "lens-tk", body.ToString(), Css, "", $"LensViz.plain(\"{id}\")");
    }

    /// <param name="topValues">[position, k].</param>
    public static HtmlContent Render(string[] tokens, string[][] topTokens, torch.Tensor topValues,
        string? title = null) =>
        Render(tokens, topTokens, Rows(topValues), title);

    public static HtmlContent RenderFragment(string[] tokens, string[][] topTokens, torch.Tensor topValues,
        string? title = null) =>
        RenderFragment(tokens, topTokens, Rows(topValues), title);

    static float[][] Rows(torch.Tensor values)
    {
        var a = TensorArrays.ToArray2(values, "topValues");
        return Enumerable.Range(0, a.GetLength(0))
            .Select(i => Enumerable.Range(0, a.GetLength(1)).Select(j => a[i, j]).ToArray()).ToArray();
    }

    const string Css = """
.lens-tk .lens-tk-wrap{overflow:auto;max-height:560px}
.lens-tk table{border-collapse:collapse;font-size:12px}
.lens-tk th{position:sticky;top:0;background:#fafafa;font-weight:600;padding:3px 6px;border-bottom:1px solid #ddd}
.lens-tk td{padding:2px 6px;border:1px solid #eee;white-space:nowrap}
.lens-tk .lens-tk-pos{color:#888;text-align:right}
.lens-tk .lens-tk-tok{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre}
.lens-tk .lens-tk-val{margin-left:6px;font-size:10.5px;opacity:.8}
.lens-tk .lens-tk-cell:hover{outline:2px solid #333}
""";
}
