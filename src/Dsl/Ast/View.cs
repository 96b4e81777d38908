namespace Lens.Dsl;

/// <summary>What `show` shows.</summary>
public abstract record View
{
    private protected View() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>`pattern L1` or `pattern L1H4, L0H2`: attention patterns of the selected heads.</summary>
public sealed record PatternView(Selection Heads) : View;

/// <summary>`scores` (all computed) or `scores induction`.</summary>
public sealed record ScoresView(ScoreKind? Score) : View;

/// <summary>`tokens`: the current input, token by token.</summary>
public sealed record TokensView : View;
