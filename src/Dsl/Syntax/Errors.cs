namespace Lens.Dsl;

/// <summary>A syntax error found inside a statement's grammar, at a position in the statement's line; becomes a
/// DslParseException.</summary>
internal sealed class SyntaxError(int position, string problem, IReadOnlyList<string> expected) : Exception(problem)
{
    public int Position { get; } = position;

    public string Problem { get; } = problem;

    public IReadOnlyList<string> Expected { get; } = expected;
}

internal static class Errors
{
    /// <summary>An error at a 0-based (line, index) of the source.</summary>
    public static DslParseException At(string file, IReadOnlyList<string> lines, int line, int index, string problem,
        IReadOnlyList<string> expected) =>
        new(file, line + 1, index + 1, lines[line], problem, expected);

    /// <summary>"unknown score kind 'x'; did you mean 'y'?" or, with nothing near, "...; expected a, b or c".</summary>
    public static SyntaxError UnknownWord(int position, string what, string word, IReadOnlyList<string> valid,
        string? otherwise = null)
    {
        var hint = Suggest.DidYouMean(Suggest.Nearest(word, valid))
                   ?? otherwise
                   ?? "expected " + Listing.Or(valid);
        return new SyntaxError(position, $"unknown {what} '{word}'; {hint}", valid.Select(v => $"'{v}'").ToArray());
    }

    /// <summary>"expected a, b or c, found X".</summary>
    public static string Expected(IReadOnlyList<string> expected, string found) =>
        expected.Count == 0 ? $"unexpected {found}" : $"expected {Listing.Or(expected)}, found {found}";
}
