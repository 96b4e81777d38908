namespace Lens.Dsl;

/// <summary>A token named by its text (`" Mary"`) or by its id (`11`).</summary>
public abstract record TokenRef
{
    private protected TokenRef() { }

    public sealed override string ToString() => Printer.Print(this);
}

public sealed record TokenText(string Text) : TokenRef;

public sealed record TokenId(int Id) : TokenRef
{
    private Valid InRange { get; } = Ranges.TokenId.Of(Id);
}

/// <summary>`to " Mary"` or `to " Mary" vs " John"` (the logit difference).</summary>
public sealed record LogitTarget(TokenRef Token, TokenRef? Versus)
{
    public override string ToString() => Printer.Print(this);
}

/// <summary>What `patch` measures on each patched run.</summary>
public abstract record Metric
{
    private protected Metric() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>`logit_diff " Mary" " John"`: logit of the correct token minus that of the incorrect one.</summary>
public sealed record LogitDiffMetric(TokenRef Correct, TokenRef Incorrect) : Metric;

/// <summary>`loss`.</summary>
public sealed record LossMetric : Metric;

/// <summary>`prob " Mary"`: the probability of a token.</summary>
public sealed record ProbMetric(TokenRef Token) : Metric;
