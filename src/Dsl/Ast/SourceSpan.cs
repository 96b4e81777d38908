namespace Lens.Dsl;

/// <summary>
/// Where a node came from in an experiment file: 1-based line and column of its first character,
/// and the line and column just past its last character (exclusive). Columns count characters, a tab is one.
/// </summary>
public readonly record struct SourceSpan(string File, int Line, int Column, int EndLine, int EndColumn)
{
    /// <summary>The span of a node that was built in code rather than parsed.</summary>
    public static readonly SourceSpan None = new("", 0, 0, 0, 0);

    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>
/// Where a let-bound name stands: the 0-based index in its statement's line (-1 when built in code). Equal to every
/// other position, so that it takes no part in the equality of the node that holds it (nor in its JSON: it is
/// internal).
/// </summary>
internal readonly record struct NamePosition(int Index)
{
    public static readonly NamePosition None = new(-1);

    public bool Equals(NamePosition other) => true;

    public override int GetHashCode() => 0;
}
