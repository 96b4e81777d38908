using System.Diagnostics;

namespace Lens.Hub;

/// <summary>
/// The default download progress display: one line per file on a text writer (stderr), redrawn in place at
/// most ten times a second on a terminal; where the writer is redirected, only the finished line is written.
/// </summary>
public sealed class ConsoleProgressBar : IProgress<(string File, long Done, long Total)>
{
    const int BarWidth = 30;
    readonly TextWriter _writer;
    readonly bool _interactive;
    readonly object _gate = new();
    readonly Stopwatch _sinceDraw = Stopwatch.StartNew();
    readonly Dictionary<string, (Stopwatch Clock, long StartDone)> _started = new();

    /// <summary>A bar on stderr, redrawn in place when stderr is a terminal.</summary>
    public static ConsoleProgressBar Stderr { get; } = new(Console.Error, !Console.IsErrorRedirected);

    public ConsoleProgressBar(TextWriter writer, bool interactive)
    {
        _writer = writer;
        _interactive = interactive;
    }

    public void Report((string File, long Done, long Total) value)
    {
        var (file, done, total) = value;
        lock (_gate)
        {
            // A resumed download starts part-way; its rate counts only the bytes fetched now.
            if (!_started.TryGetValue(file, out var start)) _started[file] = start = (Stopwatch.StartNew(), done);
            var finished = total > 0 && done >= total;
            if (finished)
            {
                _started.Remove(file);
                _writer.Write((_interactive ? "\r" : "") + Line(file, done, total, start.StartDone, start.Clock.Elapsed)
                    + "\n");
                _writer.Flush();
            }
            else if (_interactive && _sinceDraw.ElapsedMilliseconds >= 100)
            {
                _sinceDraw.Restart();
                _writer.Write("\r" + Line(file, done, total, start.StartDone, start.Clock.Elapsed));
                _writer.Flush();
            }
        }
    }

    static string Line(string file, long done, long total, long startDone, TimeSpan elapsed)
    {
        var fraction = total > 0 ? Math.Clamp((double)done / total, 0, 1) : 0;
        var filled = (int)Math.Round(fraction * BarWidth);
        var rate = elapsed.TotalSeconds > 0.05 ? (done - startDone) / elapsed.TotalSeconds : 0;
        return $"{file} [{new string('#', filled)}{new string('.', BarWidth - filled)}] {fraction * 100,5:0.0}% " +
               $"{Bytes(done)}/{Bytes(total)} {Bytes((long)rate)}/s";
    }

    /// <summary>1536 → "1.5 KiB".</summary>
    public static string Bytes(long n)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = n;
        var u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        return u == 0 ? $"{n} B" : $"{v:0.0} {units[u]}";
    }
}
