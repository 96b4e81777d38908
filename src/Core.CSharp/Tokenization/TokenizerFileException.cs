namespace Lens.Tokenization;

/// <summary>A tokenizer file (or folder) that is missing, unreadable or not in the expected format.</summary>
public sealed class TokenizerFileException : IOException
{
    public TokenizerFileException(string path, string problem, Exception? inner = null)
        : base($"Tokenizer file '{path}': {problem}", inner)
    {
        FilePath = path;
    }

    /// <summary>The file or folder the problem is about.</summary>
    public string FilePath { get; }

    internal static void ThrowIfMissing(string path)
    {
        if (Directory.Exists(path))
            throw new TokenizerFileException(path, "is a folder, not a file.");
        if (!File.Exists(path))
            throw new TokenizerFileException(path, "does not exist.");
    }
}
