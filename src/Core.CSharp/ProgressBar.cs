using System.Diagnostics;

namespace Lens;

/// <summary>
/// A one-line progress display on stderr: step, bar, loss, it/s, time left. On a terminal the line is
/// redrawn at most ten times a second; when stderr is redirected a line is written every tenth of the run.
/// </summary>
public sealed class ProgressBar(int total, string label = "train")
{
    readonly Stopwatch _clock = Stopwatch.StartNew();
    long _lastDrawMs = -1000;
    int _lastDecile = -1;
    readonly bool _redirected = Console.IsErrorRedirected;

    public void Report(int step, double loss)
    {
        bool last = step >= total;
        if (_redirected)
        {
            int decile = total == 0 ? 10 : step * 10 / total;
            if (decile == _lastDecile && !last) return;
            _lastDecile = decile;
            Console.Error.WriteLine(Line(step, loss));
            return;
        }
        long now = _clock.ElapsedMilliseconds;
        if (now - _lastDrawMs < 100 && !last) return;
        _lastDrawMs = now;
        Console.Error.Write("\r" + Line(step, loss) + (last ? "\n" : ""));
    }

    /// <summary>Ends the line when training stopped before the last step.</summary>
    public void Finish(int step, double loss)
    {
        if (_redirected) { if (_lastDecile != 10) Console.Error.WriteLine(Line(step, loss)); return; }
        if (step < total) Console.Error.WriteLine("\r" + Line(step, loss));
    }

    string Line(int step, double loss)
    {
        double seconds = _clock.Elapsed.TotalSeconds;
        double rate = seconds > 0 ? step / seconds : 0;
        const int width = 24;
        int filled = total == 0 ? width : (int)((long)width * step / total);
        string eta = rate > 0
            ? TimeSpan.FromSeconds((total - step) / rate).ToString(@"m\:ss", CultureInfo.InvariantCulture)
            : "?";
        return $"{label} {step,6}/{total} [{new string('#', filled)}{new string('.', width - filled)}] " +
            $"loss {loss:F4}  {rate:F1} it/s  eta {eta}";
    }
}
