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
    /// <summary>0-based index of the name in its statement's line, for errors of the name check; -1 when built in code. Not part of equality or JSON.</summary>
    internal int Position { get; init; } = -1;

    public bool Equals(PatternName? other) => other is not null && Name == other.Name;

    public override int GetHashCode() => Name.GetHashCode(StringComparison.Ordinal);
}
