namespace Lens.IO;

/// <summary>
/// The one way Lens writes an output file: into a temporary file in the same folder, renamed over the target once
/// complete, so a reader sees the old file or the new one and never a part; the temporary file is removed when
/// writing fails, and what was there before is left unchanged.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes the file through <paramref name="write"/> (given a stream on the temporary file); creates its
    /// folder when missing.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new IOException($"cannot write '{path}': it is a folder");
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = TemporaryPath(full);
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(stream);
                stream.Flush(flushToDisk: false);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
            writer.Write(text);
        });

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, stream => stream.Write(bytes));

    /// <summary>A hidden name beside the target, unique to this process and call: `.NAME.PID-RANDOM.tmp`.</summary>
    public static string TemporaryPath(string path)
    {
        var full = Path.GetFullPath(path);
        return Path.Combine(Path.GetDirectoryName(full)!,
            $".{Path.GetFileName(full)}.{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
    }
}
