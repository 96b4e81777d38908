namespace Lens.Cli;

/// <summary>
/// Loads libtorch on a background thread while the command line is parsed and the command's code is
/// compiled: loading libtorch_cpu takes about half a second, most of a command's start-up. Commands
/// that never touch a tensor (help, version) skip it. <see cref="Join"/> before running a command, so that
/// TorchSharp never loads libtorch by itself (unpatched), and before exiting, so that the process never exits
/// while a native library is half loaded.
/// </summary>
internal static class NativePreload
{
    static Thread? _thread;

    public static void Start(string[] args)
    {
        if (args.Length == 0 || args.Any(a => a is "--help" or "-h" or "-?" or "--version")) return;
        _thread =
            new Thread(() => Lens.Native.TorchNative.EnsureLoaded()) { IsBackground = true, Name = "libtorch preload" };
        _thread.Start();
    }

    public static void Join() => _thread?.Join();
}
