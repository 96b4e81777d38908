namespace Lens.Dsl;

/// <summary>Parses experiment text into a <see cref="Script"/>.</summary>
public static class Parser
{
    /// <summary>
    /// Parses <paramref name="text"/>; <paramref name="fileName"/> is what spans and error messages call the file.
    /// Throws <see cref="DslParseException"/> at the first error in the text.
    /// </summary>
    public static Script Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        if (text.StartsWith('\uFEFF')) text = text[1..];
        var lines = text.Split('\n').Select(l => l.EndsWith('\r') ? l[..^1] : l).ToArray();
        if (text.Length > Limits.SourceCharacters)
            throw new DslParseException(fileName, 1, 1, lines[0],
                $"the experiment is {text.Length} characters long; the limit is {Limits.SourceCharacters}", []);
        return new Script(new ScriptReader(fileName, lines).Read());
    }

    /// <summary>Reads and parses a file; errors name it by <paramref name="path"/> as given.</summary>
    public static Script ParseFile(string path) => Parse(File.ReadAllText(path), path);
}
