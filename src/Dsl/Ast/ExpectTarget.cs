namespace Lens.Dsl;

/// <summary>
/// What an `expect` reads, as written: the result's name (`induction`, `detect previous_token`, `loss`,
/// `patch heads`, ...), then the cell in it (`L1H1`, `repeat 2`, `L1 pos 7`, `clean`). The words are kept
/// as text here; the runtime's checks resolve them against the model and the results computed before.
/// </summary>
public sealed record ExpectTarget(NodeList<string> Words)
{
    private Valid InRange { get; } = Valid.NotEmpty(Words, "an expectation target")
        & Valid.Require(Keywords.ExpectResults.Contains(Words[0]),
        $"'{Words[0]}' is not a result an expectation can read");

    public override string ToString() => Printer.Print(this);
}
