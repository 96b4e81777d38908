namespace Lens.Dsl;

/// <summary>
/// Which heads (or layers) a command acts on, as data: explicit selectors, a score filter, a let-bound name,
/// and unions and differences of these. Written `L1H4`, `L1`, `L*H3`, `where induction > 0.5`, `ind`,
/// `L0H1, L1H*` (union), `L1H* except L1H4` (difference), with parentheses for grouping.
/// </summary>
public abstract record Selection
{
    private protected Selection() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>`L1H4`, `L*H3` (head 3 of every layer), `L1H*` (every head of layer 1), `L*H*`. Null means `*`.</summary>
public sealed record HeadSelector(int? Layer, int? Head) : Selection
{
    private Valid InRange { get; } = Ranges.LayerIndex.Of(Layer) & Ranges.HeadIndex.Of(Head);
}

/// <summary>`L1` (layer 1 as a whole) or `L*` (every layer). Null means `*`.</summary>
public sealed record LayerSelector(int? Layer) : Selection
{
    private Valid InRange { get; } = Ranges.LayerIndex.Of(Layer);
}

/// <summary>`where induction &gt; 0.5 and prev_token &lt; 0.2`: the heads whose scores meet every condition.</summary>
public sealed record ScoreFilter(NodeList<ScoreCondition> Conditions) : Selection
{
    private Valid InRange { get; } = Valid.NotEmpty(Conditions, "a score filter");
}

/// <summary>A selection bound earlier with `let`.</summary>
public sealed record SelectionName(string Name) : Selection
{
    /// <summary>Where the name was written, for errors of the name check.</summary>
    internal NamePosition Position { get; init; } = NamePosition.None;
}

/// <summary>`a, b, c`: every head any part selects (two or more parts).</summary>
public sealed record SelectionUnion(NodeList<Selection> Parts) : Selection
{
    private Valid InRange { get; } = Valid.Require(Parts.Count >= 2, "a selection union needs at least two parts");
}

/// <summary>`a except b`: the heads of <see cref="Included"/> that <see cref="Excluded"/> does not select.</summary>
public sealed record SelectionExcept(Selection Included, Selection Excluded) : Selection;

/// <summary>`induction > 0.5`.</summary>
public sealed record ScoreCondition(ScoreKind Score, Comparison Comparison, double Threshold)
{
    public override string ToString() => Printer.Print(this);
}
