namespace Lens.Dsl;

/// <summary>The pattern `detect` compares attention with: a built-in one or a let-bound matrix.</summary>
public abstract record DetectPattern
{
    private protected DetectPattern() { }

    public sealed override string ToString() => Printer.Print(this);
}

public sealed record BuiltinPattern(BuiltinPatternKind Kind) : DetectPattern;

/// <summary>A name bound with `let NAME = pattern [[...]]`.</summary>
public sealed record PatternName(string Name) : DetectPattern
{
    /// <summary>Where the name was written, for errors of the name check.</summary>
    internal NamePosition Position { get; init; } = NamePosition.None;

    private Valid NotBuiltin { get; } =
        Valid.Require(!Keywords.BuiltinPatterns.TryParse(Name, out _),
            $"'{Name}' is a built-in detection pattern, not a name");
}
