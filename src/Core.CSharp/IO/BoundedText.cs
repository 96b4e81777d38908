using System.Text;

namespace Lens.IO;

/// <summary>
/// Reads a text file that a user names, refusing one larger than a limit while reading (so a device such as
/// /dev/zero or a file that grows is never read without end) and one that is a folder.
/// </summary>
public static class BoundedText
{
    /// <summary>The file's text (UTF-8, a byte order mark dropped); throws <see cref="IOException"/> naming
    /// <paramref name="what"/> beyond <paramref name="maxBytes"/>.</summary>
    public static string Read(string path, long maxBytes, string what)
    {
        if (Directory.Exists(path)) throw new IOException($"{what} '{path}' is a folder, not a file");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var bytes = new MemoryStream();
        var buffer = new byte[1 << 16];
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            if (bytes.Length + read > maxBytes)
                throw new IOException($"{what} '{path}' is larger than {maxBytes} bytes, the limit");
            bytes.Write(buffer, 0, read);
        }
        using var reader = new StreamReader(new MemoryStream(bytes.GetBuffer(), 0, (int)bytes.Length), Encoding.UTF8,
            detectEncodingFromByteOrderMarks: true);
        return reader.ReadToEnd();
    }
}
