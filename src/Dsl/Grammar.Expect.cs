using Sprache;
using static Lens.Dsl.Tokens;

namespace Lens.Dsl;

/// <summary>`expect TARGET OP NUMBER [within TOLERANCE]`.</summary>
internal sealed partial class Grammar
{
    private const string ExpectedComparison = "a comparison (>, >=, <, <= or ==)";

    private static Parser<Statement> Expect() =>
        from target in ExpectTargetParser
        from comparison in ExpectOperatorParser
        from threshold in Number("a number to compare with")
        from options in Options.Parser("expect option",
            [Option.Of("within", Number("a tolerance after 'within'", v => v >= 0 ? null : $"the tolerance must be at least 0, found {Printer.Number(v)}"))])
        select comparison.Value == ExpectOperator.Equal && options.Value<double>("within") is null
            ? throw new SyntaxError(comparison.Start, "'==' needs a tolerance: write `== VALUE within TOLERANCE`, as in `expect loss == 2.5 within 0.01`", ["'within'"])
            : (Statement)new ExpectStatement(target, comparison.Value, threshold.Value, options.Value<double>("within"));

    /// <summary>The result's word (checked here), then cell words (runs of letters, digits and `_`, or strings) up to the comparison.</summary>
    private static readonly Parser<ExpectTarget> ExpectTargetParser = input =>
    {
        var expected = $"what to expect ({Keywords.JoinOr(Keywords.ExpectResults)})";
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
                words.Add(text.Value.Value);
                current = text.Remainder;
                continue;
            }
            var end = s.Position;
            while (end < s.Source.Length && SourceText.IsWordChar(s.Source[end])) end++;
            if (end == s.Position) return Result.Success(new ExpectTarget(NodeList.From(words)), current);
            words.Add(s.Source[s.Position..end]);
            current = Advance(s, end - s.Position);
        }
    };

    private static readonly Parser<Tok<ExpectOperator>> ExpectOperatorParser = input =>
    {
        var s = Skip(input);
        foreach (var op in new[] { ">=", "<=", "==", ">", "<" })
            if (s.Source.AsSpan(s.Position).StartsWith(op, StringComparison.Ordinal))
            {
                Keywords.ExpectOperators.TryParse(op, out var comparison);
                return Result.Success(new Tok<ExpectOperator>(comparison, s.Position), Advance(s, op.Length));
            }
        return Fail<Tok<ExpectOperator>>(input, ExpectedComparison);
    };
}
