namespace Lens.Analysis;

/// <summary>
/// How a row of tokens repeats: <see cref="Offset"/> leading tokens that are not part of the repeat (0, or 1 for
/// a BOS or any other single prefix), then <see cref="Copies"/> whole copies of a block of <see cref="Length"/> tokens.
/// </summary>
public sealed record RepeatPeriod(int Length, int Copies, int Offset)
{
    /// <summary>
    /// The shortest block that a row is whole copies of (at least two), after no leading token or one; null when the
    /// row is not a block repeated. [1, 5, 9, 7, 5, 9, 7] is 1, then [5, 9, 7] twice: length 3, offset 1.
    /// </summary>
    public static RepeatPeriod? Detect(IReadOnlyList<long> row)
    {
        RepeatPeriod? best = null;
        for (int offset = 0; offset <= 1; offset++)
        {
            int span = row.Count - offset;
            for (int length = 1; length <= span / 2 && (best is null || length < best.Length); length++)
            {
                if (span % length != 0) continue;
                bool repeats = true;
                for (int i = length; i < span && repeats; i++) repeats = row[offset + i] == row[offset + i - length];
                if (repeats) { best = new RepeatPeriod(length, span / length, offset); break; }
            }
        }
        return best;
    }

    /// <summary>The period of every row of a [batch, pos] (or [pos]) token tensor; a row that is not a repeat is an
    /// error naming it.</summary>
    public static IReadOnlyList<RepeatPeriod> OfRows(TorchSharp.torch.Tensor tokens)
    {
        using var cpu = tokens.dim() == 1 ? tokens.unsqueeze(0).cpu() : tokens.cpu();
        using var ids = cpu.to_type(TorchSharp.torch.ScalarType.Int64);
        var flat = ids.data<long>().ToArray();
        int batch = (int)ids.shape[0], width = (int)ids.shape[1];
        var periods = new RepeatPeriod[batch];
        for (int r = 0; r < batch; r++)
            periods[r] = Detect(flat.AsSpan(r * width, width).ToArray())
                         ?? throw new ArgumentException($"row {r} of the tokens is not a block repeated (at least " +
                         $"twice, after at most one leading token such as BOS)");
        return periods;
    }
}
