namespace Lens.Native;

/// <summary>
/// libtorch's intra-op thread count, capped at the cores this process may use. libtorch counts the
/// host's physical cores, which in a container or under a CPU affinity mask can be many more than
/// the process gets; its threads then wait on each other at every parallel region. .NET's
/// <see cref="Environment.ProcessorCount"/> honours affinity and cgroup CPU limits. An explicit
/// OMP_NUM_THREADS or MKL_NUM_THREADS is left alone.
/// </summary>
public static class TorchThreads
{
    static int _configured;

    /// <summary>What was decided: "kept N", "capped N → M" or "set by OMP_NUM_THREADS".</summary>
    public static string Status { get; private set; } = "not yet";

    public static void Configure()
    {
        if (Interlocked.Exchange(ref _configured, 1) == 1) return;
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OMP_NUM_THREADS")) || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MKL_NUM_THREADS")))
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
