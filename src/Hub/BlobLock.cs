using System.Diagnostics;

namespace Lens.Hub;

/// <summary>
/// A cross-process lock on one blob: the lock file held open with <see cref="FileShare.None"/>. On Linux and
/// macOS .NET implements that with flock(LOCK_EX), which is per open file, so it excludes other processes,
/// other <see cref="HubClient"/>s in this process, and Python's filelock on the same path alike.
/// The lock file is left in place (deleting it would let a waiter lock a file another process just unlinked).
/// </summary>
internal sealed class BlobLock : IDisposable
{
    readonly FileStream _handle;

    BlobLock(FileStream handle) => _handle = handle;

    public static async Task<BlobLock> AcquireAsync(string lockPath, TimeSpan timeout, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        var waited = Stopwatch.StartNew();
        var pause = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            try
            {
                return new BlobLock(new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite,
                    FileShare.None));
            }
            catch (IOException e) when (e is not DirectoryNotFoundException and not PathTooLongException)
            {
                if (waited.Elapsed >= timeout)
                    throw new HubException(HubErrorKind.LockTimeout,
                        $"Waited {timeout.TotalSeconds:0.#} s for the download lock '{lockPath}', held by another " +
                        $"download of " +
                        "the same file. If no other download is running, delete that lock file and retry.", e);
                await Task.Delay(pause, ct).ConfigureAwait(false);
                pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 500));
            }
        }
    }

    public void Dispose() => _handle.Dispose();
}
