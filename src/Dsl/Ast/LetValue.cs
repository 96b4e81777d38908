namespace Lens.Dsl;

/// <summary>What a `let` binds; the kind decides where the name may be used.</summary>
public abstract record LetValue
{
    private protected LetValue() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>`heads where induction > 0.5` (or a bare selection `L1H4, L2H3`): usable wherever a selection is.</summary>
public sealed record SelectionValue(Selection Selection) : LetValue;

/// <summary>`input "When Mary ..."`: usable with `input NAME` and `patch ... from NAME`.</summary>
public sealed record InputValue(InputSource Source) : LetValue;

/// <summary>`pattern [[1, 0], [1, 1]]`: a square detection pattern, usable with `detect NAME`.</summary>
public sealed record PatternValue(NodeList<NodeList<double>> Rows) : LetValue
{
    private Valid InRange { get; } =
        Valid.NotEmpty(Rows, "a pattern")
            & Valid.Require(Rows.All(row => row.Count == Rows.Count), "a pattern must be square");
}
