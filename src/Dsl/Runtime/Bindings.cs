namespace Lens.Dsl.Runtime;

/// <summary>What a let-bound name holds while an experiment runs.</summary>
public abstract record Binding
{
    private protected Binding() { }
}

/// <summary>A selection, resolved when the `let` ran (its `where` conditions read the scores of that moment).</summary>
public sealed record SelectionBinding(Selection Selection, IReadOnlyList<HeadRef> Heads) : Binding;

/// <summary>An input, tokenized when the `let` ran.</summary>
public sealed record InputBinding(ExperimentInput Input) : Binding;

/// <summary>A detection pattern [pos][pos].</summary>
public sealed record PatternBinding(double[][] Rows) : Binding;
