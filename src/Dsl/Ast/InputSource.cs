namespace Lens.Dsl;

/// <summary>Where input tokens come from (`input ...`, `let x = input ...`, `patch ... from ...`).</summary>
public abstract record InputSource
{
    private protected InputSource() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>`"When Mary and John ..."` or `"a", "b"`: texts to tokenize, one batch row each.</summary>
public sealed record TextInput(NodeList<string> Texts) : InputSource
{
    private Valid InRange { get; } = Valid.NotEmpty(Texts, "a text input");
}

/// <summary>`tokens [50256, 11, 12]` (one row) or `tokens [[1, 2, 3], [1, 4, 5]]` (a batch of equal-length
/// rows).</summary>
public sealed record TokenInput(NodeList<NodeList<int>> Rows) : InputSource
{
    private Valid InRange { get; } =
        Valid.Require(Rows.Count > 0 && Rows.All(r => r.Count > 0 && r.Count == Rows[0].Count),
            "token rows must be non-empty and of equal length")
        & Rows.SelectMany(r => r).Aggregate(default(Valid), (valid, id) => valid & Ranges.TokenId.Of(id));
}

/// <summary>`file "prompts.txt"`: texts read from a file.</summary>
public sealed record FileInput(string Path) : InputSource
{
    private Valid InRange { get; } = Valid.NotEmpty(Path, "the file path");
}

/// <summary>
/// `repeat random 50 x2 batch 8 seed 0`: <see cref="Batch"/> rows of <see cref="Length"/> random tokens, each repeated
/// <see cref="Repeats"/> times (the induction-head test). `x` defaults to 2 and `batch` to 1; without `seed`
/// the experiment's `seed` statement (default 0) seeds the draw.
/// </summary>
public sealed record RepeatRandomInput(int Length, int Repeats, int Batch, long? Seed = null) : InputSource
{
    private Valid InRange { get; } = Ranges.SequenceLength.Of(Length) & Ranges.RepeatCount.Of(Repeats)
        & Ranges.BatchSize.Of(Batch) & Ranges.Seed.Of(Seed);
}

/// <summary>
/// `dataset "acts" rows 8..12` (rows 8 to 11, end excluded as in Python's slices) or `dataset "acts" rows 5` (one row):
/// the `token_ids` rows of an activation dataset that `lens harvest` wrote, a dataset folder or a folder of shard
/// folders.
/// </summary>
public sealed record DatasetInput(string Path, long FirstRow, int Rows) : InputSource
{
    private Valid InRange { get; } = Valid.NotEmpty(Path, "the dataset folder") & Ranges.FirstRow.Of(FirstRow)
        & Valid.Require(Rows >= 1, "a dataset input takes at least one row");
}

/// <summary>An input bound earlier with `let`.</summary>
public sealed record InputName(string Name) : InputSource
{
    /// <summary>Where the name was written, for errors of the name check.</summary>
    internal NamePosition Position { get; init; } = NamePosition.None;
}
