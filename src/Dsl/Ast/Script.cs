namespace Lens.Dsl;

/// <summary>A parsed experiment: its statements in order.</summary>
public sealed record Script(NodeList<Statement> Statements)
{
    public override string ToString() => Printer.Print(this);
}
