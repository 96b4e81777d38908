using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>How a repeated input is laid out: <see cref="Offset"/> leading tokens (1 for BOS), then
/// <see cref="Repeats"/> copies of <see cref="Length"/> tokens.</summary>
public sealed record RepeatLayout(int Length, int Repeats, int Offset, ulong Seed);

/// <summary>
/// An input as the experiment ran it: where it came from, the token ids [batch][pos] and their strings,
/// and the repeat layout for `repeat random` inputs. Plain arrays, so states stay cheap and tensor-free.
/// </summary>
public sealed record ExperimentInput(InputSource Source, long[][] Ids, string[][] Tokens, RepeatLayout? Repeat)
{
    public int Batch => Ids.Length;

    public int Positions => Ids[0].Length;

    /// <summary>int64 tokens [batch, pos] on a device (the caller disposes it).</summary>
    public Tensor ToTensor(Device device) =>
        tensor(Ids.SelectMany(r => r).ToArray(), [Batch, Positions], dtype: ScalarType.Int64, device: device);

    /// <summary>
    /// Why the input is not rows of a block repeated, which induction and duplicate-token scores need (null: it is).
    /// A `repeat random` input always is; any other is when each row is whole copies of a block
    /// (<see cref="Lens.Analysis.RepeatPeriod"/>).
    /// </summary>
    public string? NotRepeated(bool induction)
    {
        if (Repeat is not null) return null;
        for (int r = 0; r < Batch; r++)
        {
            var period = Lens.Analysis.RepeatPeriod.Detect(RealIds(r));
            var row = Batch == 1 ? "the input" : $"row {r + 1} of the input";
            if (period is null)
                return $"{row} is not a block of tokens repeated (whole copies, at least two, after at most one " +
                    $"leading token such as BOS)";
            if (induction && period.Length < 2)
                return $"{row} repeats a single token, which has no induction stripe (the block must be at least 2 " +
                    $"tokens)";
        }
        return null;
    }

    /// <summary>Rows [start, start + count) as an input of their own, with the same width (and their pads and
    /// mask).</summary>
    public ExperimentInput Slice(int start, int count) =>
        new(Source, Ids[start..(start + count)], Tokens[start..(start + count)], Repeat)
        {
            Mask = Mask?[start..(start + count)]
        };

    /// <summary>One row as a [pos] tensor.</summary>
    public Tensor Row(int row, Device device) => tensor(Ids[row], dtype: ScalarType.Int64, device: device);

    /// <summary>
    /// The attention mask [batch][pos] (1 on real tokens, 0 on pads) when texts of different lengths were
    /// padded into one batch; null when every row is all real tokens.
    /// </summary>
    public long[][]? Mask { get; init; }

    /// <summary>The mask as int64 [batch, pos] on a device, or null when nothing is padded (the caller disposes
    /// it).</summary>
    public Tensor? MaskTensor(Device device) =>
        Mask is null
            ? null
            : tensor(Mask.SelectMany(r => r).ToArray(), [Batch, Positions], dtype: ScalarType.Int64, device: device);

    /// <summary>Whether position <paramref name="pos"/> of row <paramref name="row"/> is a real token (not a
    /// pad).</summary>
    public bool IsReal(int row, int pos) => Mask is null || Mask[row][pos] == 1;

    /// <summary>The last real position of a row (right padding puts pads after it).</summary>
    public int LastReal(int row) => Mask is null ? Positions - 1 : Array.LastIndexOf(Mask[row], 1L);

    /// <summary>A row's own token ids: its real tokens, without the pads after them.</summary>
    public long[] RealIds(int row) => Mask is null ? Ids[row] : Ids[row][..(LastReal(row) + 1)];

    /// <summary>
    /// Why patching by position from <paramref name="clean"/> into this input (the corrupted one) has no meaning
    /// (null: it has): a row whose texts have different numbers of real tokens, so that position p of one is not
    /// position p of the other. Inputs of different shapes are reported elsewhere.
    /// </summary>
    public string? MisalignedWith(ExperimentInput clean)
    {
        if (clean.Batch != Batch || clean.Positions != Positions || (Mask is null && clean.Mask is null)) return null;
        for (int r = 0; r < Batch; r++)
        {
            int own = LastReal(r) + 1, theirs = clean.LastReal(r) + 1;
            if (own != theirs)
                return $"row {r + 1} of the source has {theirs} real tokens and row {r + 1} of the current input {own} "
                       + $"(the rest are pads): "
                       + "position p of one text is not position p of the other, so patching between them has no "
                       + "defined meaning; "
                       + "give texts of the same token length row by row";
        }
        return null;
    }
}
