using Sprache;
using static Lens.Dsl.Tokens;

namespace Lens.Dsl;

/// <summary>A keyword option of a command (`top 5`, `greedy`, `> out.html`): its word and the parser of its
/// value.</summary>
/// <param name="Group">Options of one group exclude each other (the ablation modes).</param>
/// <param name="Display">How expectations name it, when not `'Name'`.</param>
internal sealed record Option(string Name, Parser<object> Value, string? Group = null, string? Display = null)
{
    public static Option Flag(string name, string? group = null) => new(name, Parse.Return<object>(name), group);

    public static Option Of<T>(string name, Parser<Tok<T>> value) => new(name, value.Select(t => (object)t.Value!));

    public static Option Node<T>(string name, Parser<T> value) where T : class =>
        new(name, value.Select(v => (object)v));
}

/// <summary>The options a command was given.</summary>
internal sealed class OptionValues
{
    private readonly Dictionary<string, (Option Option, object Value)> values = new();

    public void Add(Option option, object value) => values[option.Name] = (option, value);

    public bool Has(string name) => values.ContainsKey(name);

    public T? Get<T>(string name) where T : class => values.TryGetValue(name, out var v) ? (T)v.Value : null;

    public T? Value<T>(string name) where T : struct => values.TryGetValue(name, out var v) ? (T)v.Value : null;

    /// <summary>The option given from <paramref name="group"/>, if any.</summary>
    public string? InGroup(string group) =>
        values.Values.Where(v => v.Option.Group == group).Select(v => v.Option.Name).FirstOrDefault();
}

/// <summary>
/// Parses the keyword options that end most commands, in any order, each at most once; with
/// <c>terminal</c> it also requires the end of the statement. Unknown words close to an option get a
/// suggestion; otherwise the error lists what could come next.
/// </summary>
internal static class Options
{
    private static readonly IReadOnlyList<string> None = [];

    /// <param name="what">Names an unknown option in errors: "unknown {what} 'x'".</param>
    /// <param name="followers">Words or symbols the preceding part would also have accepted (`,` `except` after a
    /// selection).</param>
    /// <param name="terminal">Whether the statement must end after the options; otherwise the loop stops at the first
    /// word it does not know.</param>
    /// <param name="extra">Another thing that may follow, for error messages only (`'{'` after an ablation).</param>
    public static Parser<OptionValues> Parser(string what, IReadOnlyList<Option> options, bool terminal = true,
        IReadOnlyList<string>? followers = null, string? extra = null) => input =>
    {
        followers ??= None;
        var values = new OptionValues();
        var current = input;
        while (true)
        {
            var s = Skip(current);
            if (s.AtEnd) return Result.Success(values, s);
            var expected = Expected(options, values, followers, extra, terminal);
            Option? option;
            IInput afterName;
            var word = Word("")(s);
            if (word.WasSuccessful)
            {
                option = options.FirstOrDefault(o => o.Name == word.Value.Value);
                afterName = word.Remainder;
                if (option is null)
                {
                    var candidates =
                        options.Select(o => o.Name).Concat(followers).Where(Keywords.IsIdentifier).ToList();
                    var near = Suggest.Nearest(word.Value.Value, candidates);
                    if (near.Count > 0)
                    {
                        var lead = near.All(n => options.Any(o => o.Name == n))
                            ? $"unknown {what} '{word.Value.Value}'"
                            : $"unexpected '{word.Value.Value}'";
                        throw new SyntaxError(s.Position, $"{lead}; {Suggest.DidYouMean(near)}", expected);
                    }
                }
            }
            else
            {
                option = options.FirstOrDefault(o => !Keywords.IsIdentifier(o.Name)
                    && s.Source.AsSpan(s.Position).StartsWith(o.Name, StringComparison.Ordinal));
                afterName = option is null ? s : Advance(s, option.Name.Length);
            }
            if (option is null)
                return terminal ? Fail<OptionValues>(current, expected) : Result.Success(values, current);
            if (values.Has(option.Name))
                throw new SyntaxError(s.Position, $"'{option.Name}' is given twice", expected);
            if (option.Group is { } group && values.InGroup(group) is { } earlier)
                throw new SyntaxError(s.Position, $"'{option.Name}' conflicts with '{earlier}': give one {group} only",
                    expected);
            var value = option.Value(afterName);
            if (!value.WasSuccessful) return Fail<OptionValues>(value.Remainder, value.Expectations);
            values.Add(option, value.Value);
            current = value.Remainder;
        }
    };

    /// <summary>Only the end of the statement (with what else the preceding part would have accepted).</summary>
    public static Parser<OptionValues> End(IReadOnlyList<string>? followers = null) =>
        Parser("option", [], true, followers);

    private static List<string> Expected(IReadOnlyList<Option> options, OptionValues given,
        IReadOnlyList<string> followers, string? extra, bool terminal)
    {
        var expected = followers.Select(f => $"'{f}'").ToList();
        expected.AddRange(options.Where(o => !given.Has(o.Name) && (o.Group is null || given.InGroup(o.Group) is null))
            .Select(o => o.Display ?? $"'{o.Name}'"));
        if (extra is not null) expected.Add(extra);
        if (terminal) expected.Add("end of statement");
        return expected;
    }
}
