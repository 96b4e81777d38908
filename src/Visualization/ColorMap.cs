using System.Text;

namespace Lens.Visualization;

/// <summary>An sRGB colour.</summary>
public readonly record struct Rgb(byte R, byte G, byte B)
{
    public string Css => $"rgb({R},{G},{B})";

    /// <summary>Dark enough that text on it should be white.</summary>
    public bool IsDark => 0.299 * R + 0.587 * G + 0.114 * B < 140;
}

/// <summary>
/// The colour scales shared by the HTML views and the PNG export (the browser gets the same colours
/// as 256-entry lookup tables, so a value looks the same everywhere).
/// </summary>
public static class ColorMap
{
    // Blue (negative) - white (zero) - red (positive), after ColorBrewer's RdBu.
    static readonly (double T, Rgb C)[] DivergingStops =
    [
        (-1.0, new Rgb(33, 102, 172)), (-0.5, new Rgb(103, 169, 207)), (0.0, new Rgb(255, 255, 255)),
        (0.5, new Rgb(239, 138, 98)), (1.0, new Rgb(178, 24, 43)),
    ];

    // White to dark blue, for attention weights in [0, 1].
    static readonly (double T, Rgb C)[] SequentialStops =
        [(0.0, new Rgb(255, 255, 255)), (0.5, new Rgb(107, 174, 214)), (1.0, new Rgb(8, 48, 107))];

    // White to dark orange, for "what attends to this token" (the column of the pattern).
    static readonly (double T, Rgb C)[] OrangeStops =
        [(0.0, new Rgb(255, 255, 255)), (0.5, new Rgb(253, 174, 107)), (1.0, new Rgb(166, 54, 3))];

    /// <summary>Not-a-number cells.</summary>
    public static readonly Rgb Missing = new(200, 200, 200);

    /// <summary>t in [-1, 1] (clamped): blue for negative, white at 0, red for positive.</summary>
    public static Rgb Diverging(double t) => Interpolate(DivergingStops, t);

    /// <summary>t in [0, 1] (clamped): white to dark blue.</summary>
    public static Rgb Sequential(double t) => Interpolate(SequentialStops, t);

    /// <summary>t in [0, 1] (clamped): white to dark orange.</summary>
    public static Rgb Orange(double t) => Interpolate(OrangeStops, t);

    /// <summary>The diverging colour for <paramref name="value"/> on a scale symmetric around 0 reaching
    /// ±<paramref name="maxAbs"/>.</summary>
    public static Rgb DivergingFor(double value, double maxAbs) =>
        double.IsNaN(value) ? Missing : Diverging(maxAbs > 0 ? value / maxAbs : 0);

    static Rgb Interpolate((double T, Rgb C)[] stops, double t)
    {
        if (double.IsNaN(t)) return Missing;
        t = Math.Clamp(t, stops[0].T, stops[^1].T);
        var i = 1;
        while (i < stops.Length - 1 && t > stops[i].T) i++;
        var (t0, a) = stops[i - 1];
        var (t1, b) = stops[i];
        var f = (t - t0) / (t1 - t0);
        static byte Mix(byte x, byte y, double f) => (byte)Math.Round(x + (y - x) * f);
        return new Rgb(Mix(a.R, b.R, f), Mix(a.G, b.G, f), Mix(a.B, b.B, f));
    }

    /// <summary>256 colours as hex (6 digits each) for the browser; index i is t = lo + i/255 (hi - lo).</summary>
    internal static string LookupTableHex(Func<double, Rgb> map, double lo, double hi)
    {
        var sb = new StringBuilder(256 * 6);
        for (var i = 0; i < 256; i++)
        {
            var c = map(lo + (hi - lo) * i / 255.0);
            sb.Append(c.R.ToString("x2", CultureInfo.InvariantCulture))
                .Append(c.G.ToString("x2", CultureInfo.InvariantCulture))
                .Append(c.B.ToString("x2", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
