using System.Text;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>
/// Lines over x as inline SVG (e.g. the logit lens: layer on x, one line per token's logit or
/// probability), with a legend and a hover guide listing every line's value at the nearest x.
/// NaN values leave gaps.
/// </summary>
public static class LinePlot
{
    const double W = 700, H = 360, Left = 66, Right = 18, Top = 14, Bottom = 52;
    static readonly string[] Palette =
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

    /// <param name="xLabels">Categories along x, evenly spaced (e.g. "embed", "L0", ..).</param>
    /// <param name="seriesNames">One name per line.</param>
    /// <param name="ys">ys[line][i] is that line's value at xLabels[i].</param>
    public static HtmlContent Render(string[] xLabels, string[] seriesNames, float[][] ys, string? title = null,
        string? xTitle = null, string? yTitle = null) =>
        HtmlPage.Wrap(title ?? "Line plot", RenderFragment(xLabels, seriesNames, ys, title, xTitle, yTitle));

    public static HtmlContent RenderFragment(string[] xLabels, string[] seriesNames, float[][] ys, string? title = null,
        string? xTitle = null, string? yTitle = null)
    {
        ArgumentNullException.ThrowIfNull(xLabels);
        return Build(Enumerable.Range(0, xLabels.Length).Select(i => (double)i).ToArray(), xLabels, true, seriesNames,
            ys, title, xTitle, yTitle);
    }

    /// <param name="x">Numeric x positions, one per point.</param>
    public static HtmlContent Render(float[] x, string[] seriesNames, float[][] ys, string? title = null,
        string? xTitle = null, string? yTitle = null) =>
        HtmlPage.Wrap(title ?? "Line plot", RenderFragment(x, seriesNames, ys, title, xTitle, yTitle));

    public static HtmlContent RenderFragment(float[] x, string[] seriesNames, float[][] ys, string? title = null,
        string? xTitle = null, string? yTitle = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Any(v => !float.IsFinite(v))) throw new ArgumentException("x values must be finite.", nameof(x));
        return Build(x.Select(v => (double)v).ToArray(), x.Select(v => Html.Value(v)).ToArray(), false, seriesNames, ys,
            title, xTitle, yTitle);
    }

    /// <param name="ys">[line, x].</param>
    public static HtmlContent Render(string[] xLabels, string[] seriesNames, torch.Tensor ys, string? title = null,
        string? xTitle = null, string? yTitle = null) =>
        Render(xLabels, seriesNames, Rows(ys), title, xTitle, yTitle);

    public static HtmlContent RenderFragment(string[] xLabels, string[] seriesNames, torch.Tensor ys,
        string? title = null, string? xTitle = null, string? yTitle = null) =>
        RenderFragment(xLabels, seriesNames, Rows(ys), title, xTitle, yTitle);

    static float[][] Rows(torch.Tensor ys)
    {
        var a = TensorArrays.ToArray2(ys, nameof(ys));
        return Enumerable.Range(0, a.GetLength(0))
            .Select(i => Enumerable.Range(0, a.GetLength(1)).Select(j => a[i, j]).ToArray()).ToArray();
    }

    static HtmlContent Build(double[] x, string[] xText, bool categorical, string[] names, float[][] ys,
        string? title, string? xTitle, string? yTitle)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(ys);
        var n = x.Length;
        if (n == 0) throw new ArgumentException("a line plot needs at least one x.", nameof(x));
        if (names.Length == 0 || names.Length != ys.Length)
            throw new ArgumentException($"{names.Length} series names for {ys.Length} series (need at least one).",
                nameof(names));
        for (var s = 0; s < ys.Length; s++)
            if (ys[s].Length != n)
                throw new ArgumentException(
                    $"series {s} (\"{names[s]}\") has {ys[s].Length} values for {n} x positions.", nameof(ys));

        // Scales: categories are spread evenly with a little margin; numbers and the y axis get "nice" ticks.
        double x0, x1;
        double[] xTicks;
        if (categorical)
        {
            x0 = -0.04 * Math.Max(1, n - 1) - (n == 1 ? 0.5 : 0);
            x1 = n - 1 - x0;
            var every = (int)Math.Ceiling(n / 16.0);
            xTicks = Enumerable.Range(0, n).Where(i => i % every == 0).Select(i => (double)i).ToArray();
        }
        else (x0, x1, xTicks) = NiceTicks(x.Min(), x.Max());
        var finite = ys.SelectMany(r => r).Where(float.IsFinite).Select(v => (double)v).DefaultIfEmpty(0).ToArray();
        var (y0, y1, yTicks) = NiceTicks(finite.Min(), finite.Max());
        double Px(double v) => Left + (v - x0) / (x1 - x0) * (W - Left - Right);
        double Py(double v) => Top + (1 - (v - y0) / (y1 - y0)) * (H - Top - Bottom);

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" xmlns=\"http://www.w3.org/2000/svg\">");
        foreach (var t in yTicks)
            svg.Append(CultureInfo.InvariantCulture,
                $"<line class=\"lens-lp-grid\" x1=\"{Left}\" x2=\"{W - Right}\" y1=\"{Html.Px(Py(t))}\" " +
                $"y2=\"{Html.Px(Py(t))}\"/>")
               .Append(CultureInfo.InvariantCulture,
                $"<text x=\"{Left - 6}\" y=\"{Html.Px(Py(t) + 4)}\" " +
                $"text-anchor=\"end\">{Html.Escape(Html.Value(t))}</text>");
        var rotate = categorical && xTicks.Length > 6 && xTicks.Any(t => xText[(int)t].Length > 5);
        foreach (var t in xTicks)
        {
            var label = Html.Escape(categorical ? TokenText.Display(xText[(int)t]) : Html.Value(t));
            var (tx, ty) = (Html.Px(Px(t)), Html.Px(H - Bottom + 16));
            svg.Append(CultureInfo.InvariantCulture,
                $"<line class=\"lens-lp-tick\" x1=\"{tx}\" x2=\"{tx}\" y1=\"{H - Bottom}\" y2=\"{H - Bottom + 4}\"/>")
               .Append(rotate
                   ? $"<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\" " +
                       $"transform=\"rotate(-35 {tx} {ty})\">{label}</text>"
                              : $"<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"middle\">{label}</text>");
        }
        svg.Append(CultureInfo.InvariantCulture,
            $"<line class=\"lens-lp-axis\" x1=\"{Left}\" x2=\"{W - Right}\" y1=\"{H - Bottom}\" y2=\"{H - Bottom}\"/>")
           .Append(CultureInfo.InvariantCulture,
            $"<line class=\"lens-lp-axis\" x1=\"{Left}\" x2=\"{Left}\" y1=\"{Top}\" y2=\"{H - Bottom}\"/>");
        if (!string.IsNullOrWhiteSpace(xTitle))
            svg.Append(CultureInfo.InvariantCulture,
                $"<text class=\"lens-lp-title\" x=\"{Html.Px((Left + W - Right) / 2)}\" y=\"{H - 6}\" " +
                $"text-anchor=\"middle\">{Html.Escape(xTitle)}</text>");
        if (!string.IsNullOrWhiteSpace(yTitle))
            svg.Append(CultureInfo.InvariantCulture,
                $"<text class=\"lens-lp-title\" transform=\"translate(14 {Html.Px((Top + H - Bottom) / 2)}) " +
                $"rotate(-90)\" text-anchor=\"middle\">{Html.Escape(yTitle)}</text>");

        var series = new List<object>();
        for (var s = 0; s < ys.Length; s++)
        {
            var color = Palette[s % Palette.Length];
            var path = new StringBuilder();
            var pen = false;
            var py = new double?[n];
            for (var i = 0; i < n; i++)
            {
                var v = ys[s][i];
                if (!float.IsFinite(v)) { pen = false; continue; }
                py[i] = Math.Round(Py(v), 1);
                path.Append(pen ? " L" : " M").Append(Html.Px(Px(x[i]))).Append(' ').Append(Html.Px(py[i]!.Value));
                pen = true;
            }
            svg.Append(CultureInfo.InvariantCulture,
                $"<path class=\"lens-lp-line\" d=\"{path.ToString().Trim()}\" stroke=\"{color}\"/>");
            if (n <= 60)
                for (var i = 0; i < n; i++)
                    if (py[i] is { } yy)
                        svg.Append(CultureInfo.InvariantCulture,
                            $"<circle cx=\"{Html.Px(Px(x[i]))}\" cy=\"{Html.Px(yy)}\" r=\"2.5\" fill=\"{color}\"/>");
            series.Add(
                new { name = names[s], py, v = ys[s].Select(v => float.IsFinite(v) ? (double?)v : null).ToArray() });
        }
        svg.Append(CultureInfo.InvariantCulture,
            $"<line class=\"lens-lp-guide\" y1=\"{Top}\" y2=\"{H - Bottom}\" visibility=\"hidden\"/>");
        for (var s = 0; s < ys.Length; s++)
            svg.Append(CultureInfo.InvariantCulture,
                $"<circle class=\"lens-lp-dot\" r=\"5\" fill=\"{Palette[s % Palette.Length]}\" " +
                $"visibility=\"hidden\"/>");
        svg.Append(CultureInfo.InvariantCulture,
            $"<rect class=\"lens-lp-hit\" x=\"{Left}\" y=\"{Top}\" width=\"{W - Left - Right}\" " +
            $"height=\"{H - Top - Bottom}\"/>");
        svg.Append("</svg>");

        var body = new StringBuilder();
        body.Append(Figure.Title(title)).Append("<div class=\"lens-lp-legend\">");
        for (var s = 0; s < names.Length; s++)
            body.Append(CultureInfo.InvariantCulture,
                $"<span><span class=\"lens-swatch\" " +
                $"style=\"background:{Palette[s % Palette.Length]}\"></span>{Html.Escape(names[s])}</span>");
        body.Append("</div>").Append(svg);
        var data = new
        {
            px = x.Select(v => Math.Round(Px(v), 1)).ToArray(),
            labels = categorical ? xText.Select(TokenText.Display).ToArray() : xText,
            xTitle = string.IsNullOrWhiteSpace(xTitle) ? "x" : xTitle,
            series,
        };
        var id = Figure.NewId("lp");
        return Figure.Fragment(id, "lens-lp", body.ToString(), Css, Script,
            $"LensViz.linePlot(\"{id}\", {Html.Json(data)})");
    }

    /// <summary>Round tick positions covering [min, max], about six of them, at steps of 1, 2, 2.5 or 5 times a power
    /// of ten.</summary>
    static (double Lo, double Hi, double[] Ticks) NiceTicks(double min, double max)
    {
        if (!(max > min)) { var d = min == 0 ? 1 : Math.Abs(min) * 0.1; min -= d; max += d; }
        var raw = (max - min) / 6;
        var mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        var step = new[] { 1, 2, 2.5, 5, 10 }.Select(m => m * mag).First(s => s >= raw * 0.999);
        var lo = Math.Floor(min / step) * step;
        var hi = Math.Ceiling(max / step) * step;
        var count = (int)Math.Round((hi - lo) / step);
        return (lo, hi, Enumerable.Range(0, count + 1).Select(i => Math.Round(lo + i * step, 10)).ToArray());
    }

    const string Css = """
.lens-lp svg{font:11px system-ui,sans-serif;fill:#444;overflow:visible;max-width:100%;height:auto}
.lens-lp .lens-lp-legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin-bottom:4px}
.lens-lp .lens-lp-grid{stroke:#eee}.lens-lp .lens-lp-axis,.lens-lp .lens-lp-tick{stroke:#888}
.lens-lp .lens-lp-title{font-size:12px;fill:#333}
.lens-lp .lens-lp-line{fill:none;stroke-width:2;stroke-linejoin:round}
.lens-lp .lens-lp-guide{stroke:#999;stroke-dasharray:3 3}
.lens-lp .lens-lp-dot{stroke:#fff;stroke-width:1.5}
.lens-lp .lens-lp-hit{fill:transparent;cursor:crosshair}
""";

    const string Script = """
if (!LensViz.linePlot) LensViz.linePlot = (id, d) => {
  const root = document.getElementById(id), svg = root.querySelector('svg'), tip = LensViz.tip(root);
  const hit = svg.querySelector('.lens-lp-hit'), guide = svg.querySelector('.lens-lp-guide'), dots = [...svg.querySelectorAll('.lens-lp-dot')];
  hit.addEventListener('mousemove', e => {
    const pt = svg.createSVGPoint();
    pt.x = e.clientX; pt.y = e.clientY;
    const x = pt.matrixTransform(svg.getScreenCTM().inverse()).x;
    let i = 0;
    d.px.forEach((p, j) => { if (Math.abs(p - x) < Math.abs(d.px[i] - x)) i = j; });
    guide.setAttribute('x1', d.px[i]); guide.setAttribute('x2', d.px[i]); guide.setAttribute('visibility', 'visible');
    const lines = [`${d.xTitle}: ${d.labels[i]}`];
    d.series.forEach((s, k) => {
      const y = s.py[i];
      dots[k].setAttribute('visibility', y === null ? 'hidden' : 'visible');
      if (y !== null) { dots[k].setAttribute('cx', d.px[i]); dots[k].setAttribute('cy', y); }
      lines.push(`${s.name}: ${LensViz.fmt(s.v[i])}`);
    });
    tip.show(lines.join('\n'), e.clientX, e.clientY, 'plot');
    root.dataset.hoverIndex = i;
  });
  hit.addEventListener('mouseleave', () => {
    guide.setAttribute('visibility', 'hidden');
    dots.forEach(c => c.setAttribute('visibility', 'hidden'));
    tip.hide();
  });
  root.dataset.ready = '1';
};
""";
}
