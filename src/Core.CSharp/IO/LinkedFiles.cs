namespace Lens.IO;

/// <summary>Files that may be links, as a hub cache snapshot's are (each links to a blob).</summary>
public static class LinkedFiles
{
    /// <summary>Whether the file exists and, when it is a link, what it finally points to exists too.</summary>
    public static bool IsPresent(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return false;
        if (info.LinkTarget is null) return true;
        try { return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true }; }
        catch (IOException) { return false; }
    }
}
