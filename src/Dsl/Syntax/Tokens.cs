using System.Globalization;
using System.Text.RegularExpressions;
using Sprache;

namespace Lens.Dsl;

/// <summary>A token's value and the index of its first character in the statement's line.</summary>
internal readonly record struct Tok<T>(T Value, int Start);

/// <summary>
/// Token-level Sprache parsers. Each skips the blanks before its token; when the token is not there it fails
/// without consuming input (remainder = the input it was given) and names what it expected, so that
/// alternatives merge their expectations and the error is reported at the token. Errors that no alternative
/// could repair (a malformed head selector, a bad escape) are thrown as <see cref="SyntaxError"/> at the token.
/// </summary>
internal static partial class Tokens
{
    public static IInput Skip(IInput input)
    {
        while (!input.AtEnd && SourceText.IsSpace(input.Current)) input = input.Advance();
        return input;
    }

    public static IInput Advance(IInput input, int count)
    {
        for (var k = 0; k < count; k++) input = input.Advance();
        return input;
    }

    public static IResult<T> Fail<T>(IInput at, IEnumerable<string> expected) => Result.Failure<T>(at, "", expected);

    public static IResult<T> Fail<T>(IInput at, params string[] expected) => Result.Failure<T>(at, "", expected);

    /// <summary>
    /// A token made of Sprache combinators: blanks, then <paramref name="body"/>, with where it starts (Sprache's
    /// <c>Span</c>). A missing token fails where the blanks began, naming <paramref name="expected"/>, so that
    /// <c>XOr</c> goes on to the next alternative and merges what each expected.
    /// </summary>
    public static Parser<Tok<T>> Lexeme<T>(Parser<T> body, string expected) => input =>
    {
        var r = body.Span()(Skip(input));
        return r.WasSuccessful
            ? Result.Success(new Tok<T>(r.Value.Value, r.Value.Start.Pos), r.Remainder)
            : Fail<Tok<T>>(input, expected);
    };

    private static readonly Parser<string> Identifier =
        Parse.Char(SourceText.IsWordStart, "a letter").Once()
            .Concat(Parse.Char(SourceText.IsWordChar, "a letter or digit").Many()).Text();

    /// <summary>An identifier: a letter or underscore, then letters, digits and underscores.</summary>
    public static Parser<Tok<string>> Word(string expected) => Lexeme(Identifier, expected);

    /// <summary>Exactly this word (not a prefix of a longer one).</summary>
    public static Parser<string> Keyword(string word) =>
        Lexeme(Identifier.Where(w => w == word), $"'{word}'").Select(t => t.Value);

    /// <summary>Punctuation such as `,`, `=`, `->`.</summary>
    public static Parser<string> Symbol(string symbol) =>
        Lexeme(Parse.String(symbol).Text(), $"'{symbol}'").Select(t => t.Value);

    /// <summary>One of the words of <paramref name="table"/>; any other word is an error with a suggestion.</summary>
    public static Parser<Tok<T>> Choice<T>(KeywordTable<T> table, string what) where T : struct, Enum =>
        Word($"{Article(what)} {what} ({table.Listing})").Select(w => table.TryParse(w.Value, out var value)
            ? new Tok<T>(value, w.Start)
            : throw Errors.UnknownWord(w.Start, what, w.Value, table.Words));

    /// <summary>
    /// A word that picks the parser of what follows from <paramref name="table"/> (in the order errors list its words);
    /// any other word is an error with a suggestion.
    /// </summary>
    public static Parser<T> Dispatch<T>(string expected, string what, OrderedDictionary<string, Parser<T>> table) =>
        Word(expected).Then(w => table.TryGetValue(w.Value, out var rest)
            ? rest
            : throw Errors.UnknownWord(w.Start, what, w.Value, [.. table.Keys]));

    /// <summary>The longest of the symbols of <paramref name="table"/> (`&gt;=`, `&lt;`) that stands next.</summary>
    public static Parser<Tok<T>> Operator<T>(KeywordTable<T> table, string expected) where T : struct, Enum =>
        Lexeme(table.Entries.OrderByDescending(e => e.Word.Length).Select(e => Parse.String(e.Word).Return(e.Value))
            .Aggregate((longer, shorter) => longer.Or(shorter)), expected);

    /// <summary>An integer (optionally negative; no fraction, no exponent).</summary>
    public static Parser<Tok<long>> Integer(string expected) =>
        Lexeme(NumberText.Where(m => !m.Groups["fraction"].Success && !m.Groups["exponent"].Success), expected)
            .Select(t =>
                long.TryParse(t.Value.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
                ? new Tok<long>(value, t.Start)
                : throw new SyntaxError(t.Start, $"the number {t.Value.Value} is too large", [expected]));

    /// <summary>An integer that keeps <paramref name="rule"/> and fits an int; a broken rule is reported at the
    /// token.</summary>
    public static Parser<Tok<int>> Count(string expected, Rule<long> rule) =>
        Integer(expected).Select(t => rule.Problem(t.Value) is { } problem
            ? throw new SyntaxError(t.Start, problem, [expected])
            : t.Value > int.MaxValue
                ? throw new SyntaxError(t.Start, $"{rule.Noun} is too large, found {t.Value}", [expected])
                : new Tok<int>((int)t.Value, t.Start));

    /// <summary>A decimal number: `-1`, `0.5`, `1e-05`.</summary>
    public static Parser<Tok<double>> Number(string expected) =>
        Lexeme(NumberText, expected).Select(t =>
            double.Parse(t.Value.Value, NumberStyles.Float, CultureInfo.InvariantCulture) is var value
                && double.IsFinite(value)
                ? new Tok<double>(value, t.Start)
                : throw new SyntaxError(t.Start, $"the number {t.Value.Value} is too large", [expected]));

    /// <summary>A number that keeps <paramref name="rule"/>.</summary>
    public static Parser<Tok<double>> Number(string expected, Rule<double> rule) =>
        Number(expected).Select(t =>
            rule.Problem(t.Value) is { } problem ? throw new SyntaxError(t.Start, problem, [expected]) : t);

    /// <summary>A number's text; `50x2` or `1.2.3` is one bad token, not a number followed by something else.</summary>
    private static readonly Parser<Match> NumberText = input =>
        NumberRegex().Match(input.Source, input.Position) is { Success: true } match
            ? Result.Success(match, Advance(input, match.Length))
            : Fail<Match>(input, "a number");

    /// <summary>A string literal with escapes \" \\ \n \t \r \uXXXX.</summary>
    public static Parser<Tok<string>> String(string expected) => input =>
    {
        var s = Skip(input);
        if (s.AtEnd || s.Current != '"') return Fail<Tok<string>>(input, expected);
        var text = StringCharacter.Many().Text()(s.Advance());
        if (text.Remainder.AtEnd)
            throw new SyntaxError(s.Position, "unterminated string; expected a closing '\"' before the end of the line",
                ["'\"'"]);
        return Result.Success(new Tok<string>(text.Value, s.Position), text.Remainder.Advance());
    };

    /// <summary>A string literal's character: any but a quote or a backslash, or an escape (a bad one fails at its
    /// backslash).</summary>
    private static readonly Parser<char> StringCharacter =
        Parse.CharExcept(c => c is '"' or '\\', "a character").Or(input =>
    {
        if (input.AtEnd || input.Current != '\\') return Fail<char>(input, "'\\'");
        var (source, p) = (input.Source, input.Position);
        var escape = p + 1 < source.Length ? source[p + 1] : ' ';
        char? plain = escape switch { '"' or '\\' => escape, 'n' => '\n', 't' => '\t', 'r' => '\r', _ => null };
        if (plain is { } c) return Result.Success(c, Advance(input, 2));
        if (escape != 'u')
            throw new SyntaxError(p,
                $"unknown escape '\\{escape}' in a string; the escapes are \\\" \\\\ \\n \\t \\r and \\uXXXX",
                ["\\\"", "\\\\", "\\n", "\\t", "\\r", "\\uXXXX"]);
        var hex = source.Length >= p + 6 ? source.Substring(p + 2, 4) : source[(p + 2)..];
        if (hex.Length < 4
            || !ushort.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
            throw new SyntaxError(p, "bad escape in a string: \\u must be followed by four hex digits, as in \\u0041",
                ["four hex digits"]);
        return Result.Success((char)code, Advance(input, 6));
    });

    /// <summary>An unquoted path or name: everything up to a blank, `;`, `#`, a brace or a quote.</summary>
    public static Parser<Tok<string>> BareWord(string expected) =>
        Lexeme(Parse.Char(c => !SourceText.EndsBareWord(c), "a path character").AtLeastOnce().Text(), expected);

    /// <summary>A path (or model reference): a string literal or a bare word, not empty.</summary>
    public static Parser<Tok<string>> PathArgument(string expected, string noun) =>
        String(expected).XOr(BareWord(expected))
            .Select(t =>
                t.Value.Length == 0 ? throw new SyntaxError(t.Start, $"{noun} must not be empty", [expected]) : t);

    /// <summary>A hook name: identifiers joined by dots (`blocks.1.attn.hook_pattern`), or a single
    /// identifier.</summary>
    public static Parser<Tok<string>> DottedName(string expected) =>
        Lexeme(DottedText, expected).Select(t => DottedNameRegex().IsMatch(t.Value)
            ? t
            : throw new SyntaxError(t.Start,
                $"bad hook name '{t.Value}'; expected names joined by single dots, as in blocks.1.attn.hook_pattern",
                [expected]));

    private static readonly Parser<string> DottedText =
        Parse.Char(SourceText.IsWordStart, "a letter").Once()
            .Concat(Parse.Char(c => SourceText.IsWordChar(c) || c == '.', "").Many()).Text();

    // `L` and a digit or `*`, then the rest of the word: all of it must be one selector.
    private static readonly Parser<string> SelectorText = Parse.Char('L').Once()
        .Concat(Parse.Char(c => char.IsAsciiDigit(c) || c == '*', "").Once())
        .Concat(Parse.Char(c => SourceText.IsWordChar(c) || c == '*', "").Many()).Text();

    /// <summary>`L1H4`, `L*H3`, `L1H*`, `L*H*` (heads) or `L1`, `L*` (layers). Anything else starting `L1`/`L*` is an
    /// error.</summary>
    public static readonly Parser<Tok<Selection>> Selector =
        Lexeme(SelectorText, "a head or layer selector such as L1H4 or L1")
            .Select(t => SelectorRegex().Match(t.Value) is { Success: true } m
            ? new Tok<Selection>(m.Groups["head"].Success
                ? new HeadSelector(Index(m.Groups["layer"].Value, t.Start, "layer"),
                    Index(m.Groups["head"].Value, t.Start, "head"))
                : new LayerSelector(Index(m.Groups["layer"].Value, t.Start, "layer")), t.Start)
            : throw new SyntaxError(t.Start,
                $"bad head selector '{t.Value}'; expected L<layer>H<head> such as L1H4, L1H* or L*H3, or a layer "
                + "such as L1", ["a head or layer selector such as L1H4 or L1"]));

    /// <summary>`L0`: one layer, no wildcard.</summary>
    public static Parser<Tok<int>> Layer(string expected) => Indexed('L', "layer", expected, "a layer such as L0");

    /// <summary>`N12`: one MLP neuron.</summary>
    public static Parser<Tok<int>> Neuron(string expected) => Indexed('N', "neuron", expected, "a neuron such as N12");

    /// <summary>`x2`: how many times `repeat random` repeats its tokens.</summary>
    public static readonly Parser<Tok<int>> RepeatCount =
        Lexeme(Identifier.Where(w => RepeatRegex().IsMatch(w)), "a repeat count such as x2").Select(t =>
        {
            var count = Index(t.Value[1..], t.Start, "repeat count") ?? 0;
            return Ranges.RepeatCount.Problem(count, t.Value) is { } problem
                ? throw new SyntaxError(t.Start, problem, ["a repeat count such as x2"])
                : new Tok<int>(count, t.Start);
        });

    private static Parser<Tok<int>> Indexed(char prefix, string noun, string expected, string example) =>
        Lexeme(Identifier.Where(w => w.Length >= 2 && w[0] == prefix && char.IsAsciiDigit(w[1])), expected).Select(t =>
            t.Value[1..].All(char.IsAsciiDigit)
                ? new Tok<int>(Index(t.Value[1..], t.Start, noun)!.Value, t.Start)
                : throw new SyntaxError(t.Start, $"bad {noun} '{t.Value}'; expected {example}", [expected]));

    /// <summary>Digits as an index, or null for `*`.</summary>
    private static int? Index(string digits, int position, string noun)
    {
        if (digits == "*") return null;
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new SyntaxError(position, $"the {noun} index {digits} is too large", []);
    }

    /// <summary>`[a, b, c]`, at least one item; the list's Start is its `[`.</summary>
    public static Parser<Tok<NodeList<T>>> BracketList<T>(Parser<T> item) =>
        from open in Lexeme(Parse.Char('['), "'['")
        from items in item.XDelimitedBy(Symbol(","))
        from close in CloseBracket
        select new Tok<NodeList<T>>(NodeList.From(items), open.Start);

    // After an item either a comma or the closing bracket may come.
    private static readonly Parser<string> CloseBracket = input =>
        Symbol("]")(input) is { WasSuccessful: true } close ? close : Fail<string>(input, "','", "']'");

    public static string Article(string noun) => "aeiou".Contains(noun[0]) ? "an" : "a";

    [GeneratedRegex(@"^L(?<layer>\d+|\*)(H(?<head>\d+|\*))?$")]
    private static partial Regex SelectorRegex();

    // The lookahead refuses what a backtracked, shorter match would leave: a digit, a dot or a letter.
    [GeneratedRegex(@"\G-?[0-9]+(?<fraction>\.[0-9]+)?(?<exponent>[eE][+-]?[0-9]+)?(?![A-Za-z0-9_.])")]
    private static partial Regex NumberRegex();

    [GeneratedRegex(@"^x\d+$")]
    private static partial Regex RepeatRegex();

    /// <summary>A well-formed hook name: identifiers joined by single dots.</summary>
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")]
    internal static partial Regex DottedNameRegex();
}
