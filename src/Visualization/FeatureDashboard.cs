using System.Text;
using Lens.Sae;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>
/// An SAE feature's dashboard (SAE-Vis / Neuronpedia style, offline): its top-activating contexts over a
/// set of inputs, each token shaded by the feature's activation there (the value on hover), a histogram
/// of its activations where it fires, and the tokens its decoder direction promotes and suppresses.
/// </summary>
public static class FeatureDashboard
{
    /// <summary>A self-contained page with one dashboard per feature.</summary>
    /// <param name="inputs">Token ids, each [batch, pos]; rows are numbered across them in order.</param>
    public static HtmlContent Build(HookedTransformer model, SparseAutoencoder sae, IReadOnlyList<int> features,
        IReadOnlyList<torch.Tensor> inputs, FeatureSummaryOptions? options = null, string? title = null)
    {
        var summaries = FeatureSummary.Compute(model, sae, features, inputs, options);
        return HtmlPage.Wrap(title ?? $"SAE features {string.Join(", ", features)} at {sae.HookName}",
            [.. summaries.Select(s => RenderFragment(s))]);
    }

    public static HtmlContent Build(HookedTransformer model, SparseAutoencoder sae, int feature,
        IReadOnlyList<torch.Tensor> inputs, FeatureSummaryOptions? options = null, string? title = null) =>
        Build(model, sae, [feature], inputs, options, title);

    public static HtmlContent Render(FeatureSummary summary, string? title = null) =>
        HtmlPage.Wrap(title ?? $"SAE feature {summary.Feature} at {summary.HookName}", RenderFragment(summary, title));

    public static HtmlContent RenderFragment(FeatureSummary s, string? title = null)
    {
        ArgumentNullException.ThrowIfNull(s);
        var scale = s.MaxActivation > 0 ? s.MaxActivation : 1;
        var body = new StringBuilder(4096 + s.TopContexts.Sum(c => c.Tokens.Length) * 160);
        body.Append(Figure.Title(title ?? $"Feature {s.Feature} at {s.HookName}"))
            .Append(CultureInfo.InvariantCulture,
            $"<div class=\"lens-fd-stats\" data-positions=\"{s.Positions}\" data-firing=\"{s.Firing}\" " +
            $"data-max=\"{Html.Num(s.MaxActivation)}\">")
            .Append(Html.Escape($"fires on {s.Firing} of {s.Positions} positions " +
            $"({Html.Value(s.Positions == 0 ? 0 : 100.0 * s.Firing / s.Positions)} %), max " +
            $"activation {Html.Value(s.MaxActivation)}"))
            .Append("</div>");

        body.Append("<div class=\"lens-fd-section\">Top activations</div><table class=\"lens-fd-top\"><thead><tr>" +
            "<th>#</th><th>row</th><th>pos</th><th>activation</th><th>context</th></tr></thead><tbody>");
        for (var i = 0; i < s.TopContexts.Count; i++)
        {
            var c = s.TopContexts[i];
            body.Append(CultureInfo.InvariantCulture,
                $"<tr class=\"lens-fd-ctx\" data-row=\"{c.Row}\" data-pos=\"{c.Position}\" " +
                $"data-act=\"{Html.Num(c.Activation)}\">")
                .Append(CultureInfo.InvariantCulture, $"<td>{i + 1}</td><td>{c.Row}</td><td>{c.Position}</td>" +
                    $"<td>{Html.Escape(Html.Value(c.Activation))}</td><td class=\"lens-fd-tokens\">");
            for (var j = 0; j < c.Tokens.Length; j++)
            {
                var v = c.Activations[j];
                var p = c.Start + j;
                var shade = v > 0 ? ColorMap.Orange(Math.Min(1, v / scale)) : (Rgb?)null;
                var style =
                    shade is { } col ? $" style=\"background:{col.Css}{(col.IsDark ? ";color:#fff" : "")}\"" : "";
                var peak = p == c.Position ? " data-peak=\"1\"" : "";
                var tip = $"row {c.Row} pos {p} \"{TokenText.Display(c.Tokens[j])}\": {Html.Value(v)}";
                body.Append(Figure.Token(c.Tokens[j],
                    $" data-pos=\"{p}\" data-v=\"{Html.Num(v)}\" data-tip=\"{Html.Escape(tip)}\"{peak}{style}"));
            }
            body.Append("</td></tr>");
        }
        if (s.TopContexts.Count == 0)
            body.Append("<tr><td colspan=\"5\">the feature does not fire on these inputs</td></tr>");
        body.Append("</tbody></table>")
            .Append(Figure.ColorBar(ColorMap.Orange, 0, 1, "0", Html.Value(scale)));

        body.Append("<div class=\"lens-fd-section\">Activation histogram (positions where it fires)</div>")
            .Append(Histogram(s));

        body.Append("<div class=\"lens-fd-section\">Direct logit attribution of the decoder direction</div>");
        if (s.LogitsUnavailable is string why)
            body.Append(CultureInfo.InvariantCulture, $"<div class=\"lens-fd-note\">{Html.Escape(why)}</div>");
        else
            body.Append("<div class=\"lens-fd-logits\">").Append(LogitList("promoted", s.Promoted))
                .Append(LogitList("suppressed", s.Suppressed)).Append("</div>");

        var id = Figure.NewId("fd");
        return Figure.Fragment(id, "lens-fd", body.ToString(), Css, "", $"LensViz.plain(\"{id}\")");
    }

    static string Histogram(FeatureSummary s)
    {
        const double width = 480, height = 120;
        var n = s.BinCounts.Length;
        var most = Math.Max(1, s.BinCounts.DefaultIfEmpty(0).Max());
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture,
            $"<svg class=\"lens-fd-hist\" width=\"{Html.Px(width)}\" height=\"{Html.Px(height + 16)}\" viewBox=\"0 " +
            $"0 {Html.Px(width)} {Html.Px(height + 16)}\">");
        for (var i = 0; i < n; i++)
        {
            var h = height * s.BinCounts[i] / most;
            var tip = $"[{Html.Value(s.BinEdges[i])}, {Html.Value(s.BinEdges[i + 1])}{(i == n - 1 ? "]" : ")")}: " +
                $"{s.BinCounts[i]} positions";
            sb.Append(CultureInfo.InvariantCulture,
                $"<rect class=\"lens-fd-bin\" x=\"{Html.Px(i * width / n)}\" y=\"{Html.Px(height - h)}\" " +
                $"width=\"{Html.Px(width / n - 1)}\" height=\"{Html.Px(Math.Max(h, 0.5))}\"")
              .Append(CultureInfo.InvariantCulture,
                $" data-count=\"{s.BinCounts[i]}\" data-tip=\"{Html.Escape(tip)}\"></rect>");
        }
        sb.Append(CultureInfo.InvariantCulture,
            $"<text x=\"0\" y=\"{Html.Px(height + 13)}\">0</text><text x=\"{Html.Px(width)}\" " +
            $"y=\"{Html.Px(height + 13)}\" " +
            $"text-anchor=\"end\">{Html.Escape(Html.Value(s.MaxActivation))}</text></svg>");
        return sb.ToString();
    }

    static string LogitList(string what, IReadOnlyList<(TokenWeight Weight, string Token)> tokens)
    {
        var sb = new StringBuilder(
            $"<table class=\"lens-fd-{what}\"><thead><tr><th>{what}</th><th>logit weight</th></tr></thead><tbody>");
        foreach (var (w, token) in tokens)
            sb.Append(CultureInfo.InvariantCulture, $"<tr data-token=\"{w.Token}\" " +
                $"data-weight=\"{Html.Num(w.Weight)}\"><td>{Figure.Token(token)}</td>" +
                $"<td>{Html.Escape(Html.Value(w.Weight))}</td></tr>");
        return sb.Append("</tbody></table>").ToString();
    }

    const string Css = """
.lens-fd .lens-fd-stats{margin:4px 0 8px;color:#444}
.lens-fd .lens-fd-section{font-weight:600;margin:12px 0 4px}
.lens-fd table{border-collapse:collapse;font-size:12px}
.lens-fd th{background:#fafafa;font-weight:600;padding:3px 6px;border-bottom:1px solid #ddd;text-align:left}
.lens-fd td{padding:2px 6px;border-bottom:1px solid #f0f0f0;white-space:nowrap}
.lens-fd .lens-fd-tokens{line-height:1.9}
.lens-fd .lens-tok[data-peak]{outline:2px solid #b33;font-weight:600}
.lens-fd .lens-tok:hover{outline:2px solid #333}
.lens-fd .lens-fd-bin{fill:#e6863b}.lens-fd .lens-fd-bin:hover{fill:#333}
.lens-fd svg text{font-size:10.5px;fill:#666}
.lens-fd .lens-fd-logits{display:flex;gap:24px;align-items:flex-start}
.lens-fd .lens-fd-note{color:#a33}
""";
}
