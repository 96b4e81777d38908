namespace Lens.Dsl;

/// <summary>
/// One command of an experiment. The hierarchy is closed: every command has one sealed record below
/// (see Statements.cs), so code running a script can switch over them exhaustively.
/// <para>
/// <see cref="Span"/> says where the statement was written; it takes no part in equality, so a statement
/// that was printed and parsed again compares equal to the original.
/// </para>
/// </summary>
public abstract record Statement
{
    private protected Statement() { }

    public SourceSpan Span { get; init; } = SourceSpan.None;

    public virtual bool Equals(Statement? other) =>
        other is not null && (ReferenceEquals(this, other) || EqualityContract == other.EqualityContract);

    public override int GetHashCode() => EqualityContract.GetHashCode();

    /// <summary>The statement's canonical text: each command's record writes its own; a block's lines are indented by
    /// <paramref name="indent"/> and two spaces.</summary>
    internal abstract string Canonical(string indent);

    /// <summary>The statement as canonical experiment text (<see cref="Printer.Print(Statement)"/>).</summary>
    public sealed override string ToString() => Printer.Print(this);

    /// <summary>The statement as JSON (<see cref="AstJson"/>).</summary>
    public string ToJson() => AstJson.Serialize(this);
}
