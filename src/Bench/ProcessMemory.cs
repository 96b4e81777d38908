using System.Runtime.InteropServices;

namespace Lens.Bench;

/// <summary>Resident memory of this process from /proc/self/status (Linux), in bytes.</summary>
public static class ProcessMemory
{
    public static bool Available => File.Exists("/proc/self/status");

    /// <summary>Current resident set (VmRSS).</summary>
    public static long Resident() => Field("VmRSS:");

    /// <summary>Peak resident set since start or since <see cref="ResetPeak"/> (VmHWM).</summary>
    public static long Peak() => Field("VmHWM:");

    /// <summary>Resets VmHWM to the current resident set (writes 5 to /proc/self/clear_refs); false where the kernel
    /// refuses.</summary>
    public static bool ResetPeak()
    {
        try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Collects garbage twice around finalizers, so tensors only the GC still holds are freed, then
    /// hands the C heap's free pages back to the system (glibc's malloc_trim), so that the resident
    /// set counts memory in use rather than memory the allocator kept from earlier runs.
    /// </summary>
    public static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        TrimNativeHeap();
    }

    static bool _noTrim;

    static void TrimNativeHeap()
    {
        if (_noTrim || !OperatingSystem.IsLinux()) return;
        try { _ = malloc_trim(0); }
        // not glibc
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { _noTrim = true; }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int malloc_trim(nuint pad);

    static long Field(string name)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(name, StringComparison.Ordinal))
                return long.Parse(line[name.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException($"/proc/self/status has no {name} line");
    }

    public static double Mb(long bytes) => bytes / (1024.0 * 1024.0);
}
