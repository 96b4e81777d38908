namespace Lens.IO;

/// <summary>
/// Checks output paths before any work starts, so that a long run never ends in a write that cannot happen:
/// each must be a file that can be created or replaced (not a folder; its folder writable or creatable), none
/// may be one of the inputs, and no two outputs may be the same file.
/// </summary>
public static class OutputPaths
{
    /// <summary>Why <paramref name="path"/> cannot be written as a file, or null when it can.</summary>
    /// <param name="asWritten">how the user wrote the path, for the message (default: <paramref name="path"/>).</param>
    public static string? FileProblem(string path, string? asWritten = null)
    {
        asWritten ??= path;
        if (string.IsNullOrWhiteSpace(path)) return "the path is empty";
        string full;
        try { full = Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"'{asWritten}' is not a valid path ({e.Message})";
        }
        if (Directory.Exists(full)) return $"'{asWritten}' is a folder, not a file";
        if (asWritten.EndsWith('/') || asWritten.EndsWith(Path.DirectorySeparatorChar))
            return $"'{asWritten}' names a folder, not a file";
        return FolderProblem(Path.GetDirectoryName(full)!, asWritten);
    }

    /// <summary>Why <paramref name="path"/> cannot be written as a folder of output files (a checkpoint), or null when
    /// it can.</summary>
    public static string? FolderProblem(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) return "the path is empty";
        string full;
        try { full = Path.GetFullPath(path); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return $"'{path}' is not a valid path ({e.Message})";
        }
        if (File.Exists(full)) return $"'{path}' is a file, not a folder";
        return FolderProblem(full, path);
    }

    /// <summary>The folder must be writable, or, when missing, the nearest existing folder above it must be (and no
    /// file may stand in its way).</summary>
    static string? FolderProblem(string folder, string asWritten)
    {
        var existing = folder;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing)) return $"cannot write '{asWritten}': '{existing}' is a file, not a folder";
            var parent = Path.GetDirectoryName(existing);
            if (parent is null) return $"cannot write '{asWritten}': no folder of it exists";
            existing = parent;
        }
        var probe = AtomicFile.TemporaryPath(Path.Combine(existing, "probe"));
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1,
                FileOptions.DeleteOnClose))
            {
            }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot write '{asWritten}': the folder '{existing}' is not writable";
        }
        finally
        {
            if (File.Exists(probe)) File.Delete(probe);
        }
    }

    /// <summary>Whether two paths name the same file (after making them absolute and following links).</summary>
    public static bool Same(string a, string b) => string.Equals(Canonical(a), Canonical(b), StringComparison.Ordinal);

    static string Canonical(string path)
    {
        var full = Path.GetFullPath(path);
        try
        {
            var info = new FileInfo(full);
            if (info.Exists && info.LinkTarget is not null
                && info.ResolveLinkTarget(returnFinalTarget: true) is { } target) return target.FullName;
        }
        catch (IOException) { }
        return full;
    }

    /// <summary>
    /// Throws <see cref="OutputPathException"/> naming the first problem: an output that cannot be written, that
    /// is one of <paramref name="inputs"/>, or that another output (of <paramref name="outputs"/> or of
    /// <paramref name="otherOutputs"/>, checked elsewhere) names too. Each is (what names it, path).
    /// </summary>
    public static void Check(IReadOnlyList<(string What, string Path)> outputs,
        IEnumerable<(string What, string Path)> inputs, IEnumerable<(string What, string Path)>? otherOutputs = null)
    {
        var inputList = inputs.ToList();
        var others = (otherOutputs ?? []).ToList();
        for (var i = 0; i < outputs.Count; i++)
        {
            var (what, path) = outputs[i];
            if (FileProblem(path) is string problem) throw new OutputPathException($"{what}: {problem}");
            foreach (var (inputWhat, input) in inputList)
                if (Same(path, input))
                    throw new OutputPathException(
                        $"{what} '{path}' is {inputWhat}: an output may not overwrite an input");
            foreach (var (otherWhat, other) in outputs.Take(i).Concat(others))
                if (Same(path, other))
                    throw new OutputPathException(
                        $"{what} '{path}' is also written by {otherWhat}: two outputs may not be the same file");
        }
    }
}

/// <summary>An output path that cannot be written; found before any work starts.</summary>
public sealed class OutputPathException(string message) : IOException(message);
