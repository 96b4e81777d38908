using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Lens.Visualization;

/// <summary>Escaping and number formatting used by every renderer.</summary>
internal static class Html
{
    /// <summary>Escapes text for HTML element content and quoted attribute values.</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var sb = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                case '\'': sb.Append("&#39;"); break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// A JSON value safe to place inside a &lt;script&gt; element: the default encoder writes
    /// &lt; &gt; &amp; ' and non-ASCII as \uXXXX, so "&lt;/script&gt;" or U+2028 in a token cannot end the script.
    /// </summary>
    public static string Json<T>(T value) => JsonSerializer.Serialize(value);

    /// <summary>A number for JS/SVG/CSS: invariant culture, round-trippable, NaN/infinity as null.</summary>
    public static string Num(double v) =>
        double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null";

    /// <summary>A coordinate rounded to 0.1 px, invariant culture.</summary>
    public static string Px(double v) => Math.Round(v, 1).ToString(CultureInfo.InvariantCulture);

    /// <summary>A value as shown to people: 3 significant digits for small numbers, "NaN"/"∞" spelled out.</summary>
    public static string Value(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsPositiveInfinity(v)) return "∞";
        if (double.IsNegativeInfinity(v)) return "-∞";
        var a = Math.Abs(v);
        if (a != 0 && (a < 1e-3 || a >= 1e5)) return v.ToString("0.00e+0", CultureInfo.InvariantCulture);
        return v.ToString(a >= 100 ? "0.#" : "0.###", CultureInfo.InvariantCulture);
    }
}
