namespace Lens.Dsl;

/// <summary>
/// The size limits of the experiment language, as data: the parser and the checks refuse anything beyond them
/// with an error at the place that exceeds one, saying the limit. They keep every recursive step (parsing nested
/// brackets, resolving and printing selections) far from the thread's stack, and keep inputs to a size that a
/// run can hold.
/// </summary>
public static class Limits
{
    /// <summary>Brackets, `(` and `[`, open at once within one statement.</summary>
    public const int NestingDepth = 32;

    /// <summary>Terms (selectors, `where` filters, names) in one head selection, counting every part of its unions and
    /// `except`s.</summary>
    public const int SelectionTerms = 1024;

    /// <summary>Characters of an experiment's text (the .lens file, or a REPL session so far).</summary>
    public const int SourceCharacters = 1 << 20;

    /// <summary>Bytes of a file read by `input file` (one text per line).</summary>
    public const long InputFileBytes = 16L << 20;

    /// <summary>Texts (rows) of one input: `input file` lines, strings of an input list, rows of `tokens`.</summary>
    public const int InputRows = 65_536;
}
