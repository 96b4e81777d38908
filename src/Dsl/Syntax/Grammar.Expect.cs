using Sprache;
using static Lens.Dsl.Tokens;

namespace Lens.Dsl;

/// <summary>`expect TARGET OP NUMBER [within TOLERANCE]`.</summary>
internal sealed partial class Grammar
{
    private const string ExpectedComparison = "a comparison (>, >=, <, <= or ==)";

    /// <summary>The target, then a text comparison (`contains`, `equals`) or a numeric one.</summary>
    private static Parser<Statement> Expect() =>
        from target in ExpectTargetParser
        from text in Keyword("contains").Or(Keyword("equals")).Preview()
        from statement in text.IsDefined ? ExpectText(target) : ExpectNumber(target)
        select statement;

    /// <summary>`expect TARGET contains|equals "TEXT"`.</summary>
    private static Parser<Statement> ExpectText(ExpectTarget target) =>
        from comparison in Choice(Keywords.TextComparisons, "text comparison")
        from text in String("a string to compare with")
        from end in Options.End()
        select (Statement)new ExpectTextStatement(target, comparison.Value, text.Value);

    private static Parser<Statement> ExpectNumber(ExpectTarget target) =>
        from comparison in Operator(Keywords.ExpectOperators, ExpectedComparison)
        from threshold in Number("a number to compare with")
        from options in Options.Parser("expect option",
            [Option.Of("within", Number("a tolerance after 'within'", Ranges.Tolerance))])
        select comparison.Value == ExpectOperator.Equal && options.Value<double>("within") is null
            ? throw new SyntaxError(comparison.Start,
                "'==' needs a tolerance: write `== VALUE within TOLERANCE`, as in `expect loss == 2.5 within 0.01`",
                ["'within'"])
            : (Statement)new ExpectStatement(target, comparison.Value, threshold.Value,
                options.Value<double>("within"));

    /// <summary>
    /// The result's word (checked here), then cell words (runs of letters, digits and `_`, or strings) up to the
    /// comparison.
    /// </summary>
    private static readonly Parser<ExpectTarget> ExpectTargetParser =
        from result in Word($"what to expect ({Listing.Or(Keywords.ExpectResults)})").Select(w =>
            Keywords.ExpectResults.Contains(w.Value)
                ? w.Value
                : throw Errors.UnknownWord(w.Start, "expectation target", w.Value, Keywords.ExpectResults))
        from cells in QuotedCell.XOr(CellWord).XMany()
        select new ExpectTarget([result, .. cells]);

    private static readonly Parser<string> QuotedCell = String("a string").Select(t =>
        t.Value.Length > 0 && t.Value.All(char.IsAsciiDigit)
            ? throw new SyntaxError(t.Start, "a quoted number in an expectation target is ambiguous: write a token id "
                + $"bare ({t.Value}); a token whose text is digits is named by its id", ["a token id"])
            : t.Value);

    // Declared before CellWord, whose initializer reads it.
    private static readonly Parser<string> CellText =
        Sprache.Parse.Char(SourceText.IsWordChar, "a letter or digit").AtLeastOnce().Text();

    // Words, or words joined by single dots (hook names: blocks.0.hook_resid_post); `contains` and `equals` end the
    // target.
    private static readonly Parser<string> CellWord =
        Lexeme(CellText.DelimitedBy(Sprache.Parse.Char('.')), "a cell such as L1H1")
            .Select(t => string.Join(".", t.Value)).Where(w => !Keywords.TextComparisons.TryParse(w, out _));
}
