namespace Lens.Dsl;

/// <summary>Character classes and error wording shared by the statement splitter and the grammar.</summary>
internal static class SourceText
{
    /// <summary>Blank within a line (line breaks separate statements and are handled by the splitter).</summary>
    public static bool IsSpace(char c) => c != '\n' && char.IsWhiteSpace(c);

    public static bool IsWordStart(char c) => char.IsAsciiLetter(c) || c == '_';

    public static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    /// <summary>Characters that end a bare (unquoted) path or name.</summary>
    public static bool EndsBareWord(char c) => IsSpace(c) || c is ';' or '#' or '{' or '}' or '"';

    private static bool IsDelimiter(char c) => c is ',' or ';' or '#' or '{' or '}' or '[' or ']' or '(' or ')' or '"';

    /// <summary>The first index at or after <paramref name="index"/> that is not blank.</summary>
    public static int SkipSpaces(string line, int index)
    {
        while (index < line.Length && IsSpace(line[index])) index++;
        return index;
    }

    /// <summary>How to name what stands at <paramref name="index"/> in "..., found X".</summary>
    public static string Describe(string line, int index)
    {
        if (index >= line.Length || line[index] == '#') return "end of line";
        var c = line[index];
        if (c == '"') return "a string";
        if (IsDelimiter(c)) return $"'{c}'";
        var end = index;
        while (end < line.Length && !IsSpace(line[end]) && !IsDelimiter(line[end])) end++;
        var token = line[index..end];
        return $"'{(token.Length > 40 ? token[..40] + "..." : token)}'";
    }
}
