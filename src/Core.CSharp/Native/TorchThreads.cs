using System.Runtime.InteropServices;

namespace Lens.Native;

/// <summary>
/// How libtorch's CPU threads behave. (1) The intra-op thread count is capped at the cores this
/// process may use: libtorch counts the host's physical cores, which in a container or under a CPU
/// affinity mask can be many more than the process gets; .NET's <see cref="Environment.ProcessorCount"/>
/// honours affinity and cgroup CPU limits. (2) Idle OpenMP threads sleep instead of spinning
/// (OMP_WAIT_POLICY=PASSIVE): libgomp's default spin-wait after every parallel region burns the cores
/// that the other threads of the next region need whenever anything else runs on the machine. Measured
/// on a shared 2-core machine: a GPT-2-small forward of 128 tokens 2.0–4.3 s spinning vs 0.75–1.3 s
/// passive; a tiny model's forward 10–115 ms vs 0.8 ms. Explicit OMP_NUM_THREADS, MKL_NUM_THREADS or
/// OMP_WAIT_POLICY settings are left alone.
/// </summary>
public static class TorchThreads
{
    [DllImport("libc", EntryPoint = "setenv", BestFitMapping = false)]
    static extern int setenv(string name, string value, int overwrite);

    /// <summary>Sets OMP_WAIT_POLICY=PASSIVE for the native runtime unless already set; must run before libtorch
    /// loads.</summary>
    internal static void PrepareEnvironment()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_WAIT_POLICY"))) return;
        try { _ = setenv("OMP_WAIT_POLICY", "PASSIVE", 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    static int _configured;

    /// <summary>What was decided: "kept N", "capped N → M" or "set by OMP_NUM_THREADS".</summary>
    public static string Status { get; private set; } = "not yet";

    public static void Configure()
    {
        if (Interlocked.Exchange(ref _configured, 1) == 1) return;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MKL_NUM_THREADS")))
        {
            Status = "set by OMP_NUM_THREADS/MKL_NUM_THREADS";
            return;
        }
        int current = TorchSharp.torch.get_num_threads(), cores = Environment.ProcessorCount;
        if (cores < current)
        {
            TorchSharp.torch.set_num_threads(cores);
            Status = $"capped {current} → {cores}";
        }
        else Status = $"kept {current}";
    }
}
