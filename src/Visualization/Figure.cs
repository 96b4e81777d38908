using System.Security.Cryptography;
using System.Text;

namespace Lens.Visualization;

/// <summary>
/// Assembles a figure fragment: a root &lt;div&gt; with a unique id, its CSS and its script. Each fragment
/// carries the shared library (defined once per page: the script checks <c>window.LensViz</c> first), so
/// a fragment works alone, in a notebook cell, or several times in one report.
/// </summary>
internal static class Figure
{
    // A random per-process salt keeps ids unique even across fragments made by different processes
    // (e.g. notebook cells before and after a kernel restart), the counter within one process.
    static readonly string Salt = Convert.ToHexString(RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();
    static long _counter;

    public static string NewId(string kind) => $"lens-{kind}-{Salt}-{Interlocked.Increment(ref _counter)}";

    /// <param name="id">From <see cref="NewId"/>.</param>
    /// <param name="cssClass">The figure's class on the root, e.g. "lens-ap".</param>
    /// <param name="body">Inner HTML of the root (already escaped).</param>
    /// <param name="css">Figure-specific CSS (the shared CSS is added here).</param>
    /// <param name="script">Figure-specific library code (a guarded definition), or empty.</param>
    /// <param name="init">The call that wires this instance up, e.g. <c>LensViz.heatmap("id")</c>.</param>
    public static HtmlContent Fragment(string id, string cssClass, string body, string css, string script, string init)
    {
        var sb = new StringBuilder(body.Length + css.Length + script.Length + VizAssets.CommonJs.Length + 512);
        sb.Append("<div class=\"lens-viz ").Append(cssClass).Append("\" id=\"").Append(id).Append("\">")
          .Append(body).Append("</div>\n")
          .Append("<style>").Append(VizAssets.CommonCss).Append(css).Append("</style>\n")
          .Append("<script>").Append(VizAssets.CommonJs).Append(script).Append('\n').Append(init)
            .Append(";</script>\n");
        return new HtmlContent(sb.ToString());
    }

    /// <summary>An optional figure title.</summary>
    public static string Title(string? title) =>
        string.IsNullOrWhiteSpace(title) ? "" : $"<div class=\"lens-title\">{Html.Escape(title)}</div>";

    /// <summary>A horizontal colour bar with labels at both ends (and the middle when given).</summary>
    public static string ColorBar(Func<double, Rgb> map, double t0, double t1, string lo, string hi, string? mid = null)
    {
        var stops = string.Join(",", Enumerable.Range(0, 9).Select(i => map(t0 + (t1 - t0) * i / 8.0).Css));
        var midHtml = mid is null ? "" : $"<span class=\"lens-bar-mid\">{Html.Escape(mid)}</span>";
        return $"<div class=\"lens-legend\"><span>{Html.Escape(lo)}</span>" +
               $"<span class=\"lens-bar\" style=\"background:linear-gradient(to right,{stops})\">{midHtml}</span>" +
               $"<span>{Html.Escape(hi)}</span></div>";
    }

    /// <summary>A token as a span: visible whitespace, escaped; <paramref name="attrs"/> are added verbatim.</summary>
    public static string Token(string token, string attrs = "") =>
        $"<span class=\"lens-tok\"{attrs}>{Html.Escape(TokenText.Display(token))}</span>";
}
