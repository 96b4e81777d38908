using System.Diagnostics;

namespace Lens.Bench;

/// <summary>Repeated measurements of one figure: median, min, max.</summary>
public sealed class Samples(IEnumerable<double> values)
{
    public IReadOnlyList<double> Values { get; } = values.ToArray();
    public double Median => MedianOf(Values);
    public double Min => Values.Min();
    public double Max => Values.Max();

    public Samples Scale(double factor) => new(Values.Select(v => v * factor));

    public static double MedianOf(IEnumerable<double> values)
    {
        var s = values.OrderBy(v => v).ToArray();
        if (s.Length == 0) throw new InvalidOperationException("no samples");
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}

/// <summary>
/// Wall-clock timing. Measured and baseline are run back to back in each repetition (alternating
/// which goes first), so load from other processes hits both alike; the ratio reported is the
/// median of the per-repetition ratios.
/// </summary>
public static class Timing
{
    public static double Milliseconds(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        return sw.Elapsed.TotalMilliseconds;
    }

    public static Samples Repeat(Action action, int warmup, int reps)
    {
        for (int i = 0; i < warmup; i++) action();
        return new Samples(Enumerable.Range(0, reps).Select(_ => Milliseconds(action)).ToList());
    }

    public static (Samples Measured, Samples Baseline, double Ratio) Paired(Action measured, Action baseline,
        int warmup, int reps)
    {
        for (int i = 0; i < warmup; i++) { baseline(); measured(); }
        var m = new List<double>();
        var b = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            if (i % 2 == 0) { b.Add(Milliseconds(baseline)); m.Add(Milliseconds(measured)); }
            else { m.Add(Milliseconds(measured)); b.Add(Milliseconds(baseline)); }
        }
        return (new Samples(m), new Samples(b), Samples.MedianOf(m.Zip(b, (x, y) => x / y)));
    }
}
