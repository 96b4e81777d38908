using System.Runtime.InteropServices;

namespace Lens.Bench;

/// <summary>
/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID): unlike wall time it does not grow while
/// other processes hold the cores, so small differences stay measurable on a busy machine. Only for
/// work that runs on the calling thread (tiny tensors, which libtorch does not split across threads).
/// </summary>
public static class ThreadCpuTime
{
    [StructLayout(LayoutKind.Sequential)]
    struct Timespec { public long Seconds; public long Nanoseconds; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    static extern int clock_gettime(int clock, out Timespec ts);

    const int ClockThreadCputimeId = 3;

    public static bool Available { get; } = OperatingSystem.IsLinux() && Probe();

    static bool Probe()
    {
        try { return clock_gettime(ClockThreadCputimeId, out _) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    public static double NowMs()
    {
        if (clock_gettime(ClockThreadCputimeId, out var ts) != 0)
            throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return ts.Seconds * 1e3 + ts.Nanoseconds / 1e6;
    }

    public static double Milliseconds(Action action)
    {
        var start = NowMs();
        action();
        return NowMs() - start;
    }
}
