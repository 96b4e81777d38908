using Sprache;
using static Lens.Dsl.Tokens;

namespace Lens.Dsl;

/// <summary>`expect TARGET OP NUMBER [within TOLERANCE]`.</summary>
internal sealed partial class Grammar
{
    private const string ExpectedComparison = "a comparison (>, >=, <, <= or ==)";

    /// <summary>The target, then a text comparison (`contains`, `equals`) or a numeric one.</summary>
    private static Parser<Statement> Expect() => input =>
    {
        var target = ExpectTargetParser(input);
        if (!target.WasSuccessful) return Fail<Statement>(target.Remainder, target.Expectations);
        var next = Word("a comparison")(target.Remainder);
        return next.WasSuccessful && Keywords.TextComparisons.TryParse(next.Value.Value, out _)
            ? ExpectText(target.Value)(target.Remainder)
            : ExpectNumber(target.Value)(target.Remainder);
    };

    /// <summary>`expect TARGET contains|equals "TEXT"`.</summary>
    private static Parser<Statement> ExpectText(ExpectTarget target) =>
        from comparison in Choice(Keywords.TextComparisons, "a text comparison")
        from text in String("a string to compare with")
        from end in Options.End()
        select (Statement)new ExpectTextStatement(target, comparison.Value, text.Value);

    private static Parser<Statement> ExpectNumber(ExpectTarget target) =>
        from comparison in Operator(Keywords.ExpectOperators, ExpectedComparison)
        from threshold in Number("a number to compare with")
        from options in Options.Parser("expect option",
            [Option.Of("within", Number("a tolerance after 'within'", Ranges.Tolerance))])
        select comparison.Value == ExpectOperator.Equal && options.Value<double>("within") is null
            ? throw new SyntaxError(comparison.Start, "'==' needs a tolerance: write `== VALUE within TOLERANCE`, as in `expect loss == 2.5 within 0.01`", ["'within'"])
            : (Statement)new ExpectStatement(target, comparison.Value, threshold.Value, options.Value<double>("within"));

    /// <summary>The result's word (checked here), then cell words (runs of letters, digits and `_`, or strings) up to the comparison.</summary>
    private static readonly Parser<ExpectTarget> ExpectTargetParser = input =>
    {
        var expected = $"what to expect ({Listing.Or(Keywords.ExpectResults)})";
        var first = Word(expected)(input);
        if (!first.WasSuccessful) return Fail<ExpectTarget>(input, expected);
        if (!Keywords.ExpectResults.Contains(first.Value.Value))
            throw Errors.UnknownWord(first.Value.Start, "expectation target", first.Value.Value, Keywords.ExpectResults);
        var words = new List<string> { first.Value.Value };
        var current = first.Remainder;
        while (true)
        {
            var s = Skip(current);
            if (s.AtEnd) return Fail<ExpectTarget>(current, "a cell such as L1H1", ExpectedComparison);
            if (s.Current == '"')
            {
                var text = String("a string")(s);
                if (text.Value.Value.Length > 0 && text.Value.Value.All(char.IsAsciiDigit))
                    throw new SyntaxError(text.Value.Start, $"a quoted number in an expectation target is ambiguous: write a token id bare ({text.Value.Value}); a token whose text is digits is named by its id",
                        ["a token id"]);
                words.Add(text.Value.Value);
                current = text.Remainder;
                continue;
            }
            var end = s.Position;
            // Words, or words joined by single dots (hook names: blocks.0.hook_resid_post).
            while (end < s.Source.Length && (SourceText.IsWordChar(s.Source[end])
                   || s.Source[end] == '.' && end > s.Position && end + 1 < s.Source.Length && SourceText.IsWordChar(s.Source[end + 1]))) end++;
            if (end == s.Position || Keywords.TextComparisons.TryParse(s.Source[s.Position..end], out _))
                return Result.Success(new ExpectTarget(NodeList.From(words)), current);
            words.Add(s.Source[s.Position..end]);
            current = Advance(s, end - s.Position);
        }
    };
}
