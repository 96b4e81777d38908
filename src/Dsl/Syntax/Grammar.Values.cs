using System.Globalization;
using Sprache;
using static Lens.Dsl.Tokens;

namespace Lens.Dsl;

/// <summary>The grammar of the values commands share: selections, input sources, token and pattern matrices.</summary>
internal sealed partial class Grammar
{
    /// <summary>
    /// <code>
    /// selection := ['heads'] union ('except' union)*        (except is left-associative)
    /// union     := term (',' term)*
    /// term      := L1H4 | L1 | 'where' condition ('and' condition)* | '(' selection ')' | let-bound name
    /// </code>
    /// </summary>
    private static Parser<Selection> SelectionParser()
    {
        Parser<Selection>? whole = null;
        var condition =
            from score in Choice(Keywords.ScoreKinds, "score kind")
            from comparison in Operator(Keywords.Comparisons, "a comparison (>, >=, < or <=)")
            from threshold in Number("a threshold (a number)")
            select new ScoreCondition(score.Value, comparison.Value, threshold.Value);
        var filter =
            from keyword in Keyword("where")
            from conditions in condition.XDelimitedBy(Keyword("and"))
            select (Selection)new ScoreFilter(NodeList.From(conditions));
        var grouped =
            from open in Symbol("(")
            from inner in Sprache.Parse.Ref(() => whole!)
            from close in Symbol(")")
            select inner;
        var named = Word("a let-bound selection name")
            .Select(w => (Selection)new SelectionName(w.Value) { Position = new(w.Start) });
        var term = Selector.Select(t => t.Value).XOr(filter).XOr(grouped).XOr(named);
        var union = term.XDelimitedBy(Symbol(",")).Select(terms =>
        {
            var parts = terms.ToList();
            return parts.Count == 1 ? parts[0] : new SelectionUnion(NodeList.From(parts));
        });
        var difference =
            from first in union
            from rest in (from keyword in Keyword("except") from excluded in union select excluded).XMany()
            select rest.Aggregate(first, (included, excluded) => new SelectionExcept(included, excluded));
        var bare =
            from heads in Keyword("heads").XOptional()
            from result in difference
            select result;
        whole = input =>
        {
            var result = bare(input);
            if (result.WasSuccessful && Terms(result.Value) > Limits.SelectionTerms)
                throw new SyntaxError(Skip(input).Position,
                    $"this selection has {Terms(result.Value)} terms; the limit is {Limits.SelectionTerms} (select "
                    + "whole layers, `L1H*`, or a `where` filter instead)", ["a shorter selection"]);
            return result;
        };
        return whole;
    }

    /// <summary>The selectors, filters and names in a selection (without recursion: an `except` chain is as deep as it
    /// is long).</summary>
    private static int Terms(Selection selection)
    {
        var count = 0;
        var pending = new Stack<Selection>([selection]);
        while (pending.TryPop(out var s))
        {
            switch (s)
            {
                case SelectionUnion u: foreach (var part in u.Parts) pending.Push(part); break;
                case SelectionExcept e: pending.Push(e.Included); pending.Push(e.Excluded); break;
                default: count++; break;
            }
        }
        return count;
    }

    private static Parser<InputSource> InputSourceParser()
    {
        var repeat =
            from keyword in Keyword("repeat")
            from random in Keyword("random")
            from length in Count("a sequence length", Ranges.SequenceLength)
            from repeats in RepeatCount.XOptional()
            from options in Options.Parser("input option",
                [Option.Of("batch", Count("a batch size after 'batch'", Ranges.BatchSize)),
                    Option.Of("seed", Count("a seed after 'seed'", Ranges.Seed))], terminal: false)
            select (InputSource)new RepeatRandomInput(length.Value, repeats.IsDefined ? repeats.Get().Value : 2,
                options.Value<int>("batch") ?? 1, (long?)options.Value<int>("seed"));
        var tokens =
            from keyword in Keyword("tokens")
            from rows in TokenRows
            select (InputSource)new TokenInput(rows);
        var file =
            from keyword in Keyword("file")
            from path in PathArgument("a file path", "the file path")
            select (InputSource)new FileInput(path.Value);
        var dataset =
            from keyword in Keyword("dataset")
            from path in PathArgument("a dataset folder", "the dataset folder")
            from rowsKeyword in Keyword("rows")
            from rows in DatasetRows
            select (InputSource)new DatasetInput(path.Value, rows.First, rows.Count);
        var texts = String("a string").XDelimitedBy(Symbol(","))
            .Select(strings => (InputSource)new TextInput(NodeList.From(strings.Select(s => s.Value))));
        var named =
            Word("a let-bound input name").Select(w => (InputSource)new InputName(w.Value) { Position = new(w.Start) });
        return repeat.XOr(tokens).XOr(file).XOr(dataset).XOr(texts).XOr(named);
    }

    private const string ExpectedRows = "a row range such as 0..8, or a row such as 5";

    /// <summary>`A..B` (rows A to B - 1) or `A` (row A alone) after `dataset "DIR" rows`. A letter, digit or dot
    /// straight after (`5x`, `0..8.5`) makes it one bad token, not a range; the row limit is checked after that, so
    /// `0..70000x` is a bad token too.</summary>
    private static readonly Parser<(long First, int Count)> DatasetRows =
        Lexeme(
            from first in Sprache.Parse.Digit.AtLeastOnce().Text().Span()
            from end in Sprache.Parse.String("..").Then(_ => Sprache.Parse.Digit.Many().Text().Span()).Optional()
            from glued in Sprache.Parse.Char(c => SourceText.IsWordChar(c) || c == '.', "").Preview()
            let range = RowRange(first, end.GetOrDefault())
            where !glued.IsDefined
            select range, ExpectedRows)
        .Select(t => t.Value.End - t.Value.First is var rows && rows > Limits.InputRows
            ? throw new SyntaxError(t.Start, $"{rows} rows is above the limit of {Limits.InputRows} rows",
                [ExpectedRows])
            : (t.Value.First, (int)rows));

    /// <summary>The first row and the row after the last, from the digits before and after `..`.</summary>
    private static (long First, long End) RowRange(ITextSpan<string> first, ITextSpan<string>? last)
    {
        static long Row(ITextSpan<string> digits) =>
            long.TryParse(digits.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var row)
                ? row
                : throw new SyntaxError(digits.Start.Pos, $"the row {digits.Value} is too large", [ExpectedRows]);
        var from = Row(first);
        if (last is null) return (from, from + 1);
        if (last.Length == 0)
            throw new SyntaxError(last.Start.Pos,
                "expected the end row after '..' (rows A..B takes rows A to B - 1)", [ExpectedRows]);
        var end = Row(last);
        return end > from
            ? (from, end)
            : throw new SyntaxError(first.Start.Pos,
                $"the row range {from}..{end} is empty: rows A..B takes rows A to B - 1, so B must be above A",
                [ExpectedRows]);
    }

    // Declared before TokenRows, whose initializer reads it.
    private static readonly Parser<Tok<NodeList<int>>> TokenRow =
        BracketList(Count("a token id", Ranges.TokenId).Select(t => t.Value));

    /// <summary>`[1, 2, 3]` (one row) or `[[1, 2, 3], [1, 4, 5]]` (a batch; rows of equal length).</summary>
    private static readonly Parser<NodeList<NodeList<int>>> TokenRows =
        TokenRow.Select(row => NodeList.Of(row.Value))
            .Or(BracketList(TokenRow.Named("a row such as [1, 2]")).Select(rows =>
                EqualRows(rows.Value, rows.Value[0].Value.Count, "token", (k, length) =>
                    $"the rows of a token batch must have the same length: row {k} has {Plural(length, "token")}, "
                    + $"row 1 has {rows.Value[0].Value.Count}")))
            .Named("a token list such as [50256, 11, 12]");

    /// <summary>`[[1, 0], [1, 1]]`: a square matrix of numbers.</summary>
    private static readonly Parser<NodeList<NodeList<double>>> PatternRows =
        BracketList(BracketList(Number("a number").Select(t => t.Value)).Named("a row such as [1, 0]")).Select(rows =>
            EqualRows(rows.Value, rows.Value.Count, "value", (k, length) =>
                $"a detection pattern must be square: row {k} has {Plural(length, "value")} but there "
                + $"are {Plural(rows.Value.Count, "row")}"))
            .Named("a square matrix such as [[1, 0], [1, 1]]");

    /// <summary>The rows, once each has <paramref name="length"/> items; the first that does not is an error at its
    /// `[`.</summary>
    /// <param name="problem">The error, from the row's number (1-based) and its length.</param>
    private static NodeList<NodeList<T>> EqualRows<T>(
        NodeList<Tok<NodeList<T>>> rows, int length, string noun, Func<int, int, string> problem)
    {
        for (var k = 0; k < rows.Count; k++)
            if (rows[k].Value.Count != length)
                throw new SyntaxError(rows[k].Start, problem(k + 1, rows[k].Value.Count),
                    [$"a row of {Plural(length, noun)}"]);
        return NodeList.From(rows.Select(r => r.Value));
    }

    private static string Plural(int count, string noun) => count == 1 ? $"1 {noun}" : $"{count} {noun}s";
}
