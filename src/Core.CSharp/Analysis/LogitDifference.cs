using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// The logit difference between a correct and an incorrect answer at one position (by default the
/// last), the usual metric of IOI-style experiments, and metrics built from it for patching.
/// </summary>
public static class LogitDifference
{
    /// <summary>
    /// logits[b, position, correct[b]] − logits[b, position, incorrect[b]] per example [batch];
    /// correct/incorrect are [batch] token ids (or scalars, the same for every example).
    /// </summary>
    public static Tensor PerExample(Tensor logits, Tensor correct, Tensor incorrect, int position = -1)
    {
        if (logits.dim() != 3)
            throw new ArgumentException(
                $"logits must be [batch, pos, d_vocab], got [{string.Join(", ", logits.shape)}]");
        long batch = logits.shape[0], pos = logits.shape[1];
        long p = position < 0 ? position + pos : position;
        if (p < 0 || p >= pos)
            throw new ArgumentOutOfRangeException(nameof(position),
                $"position {position} is out of range for {pos} positions");
        using var scope = NewDisposeScope();
        var atPos = logits.select(1, p); // [batch, vocab]
        Tensor Gather(Tensor ids, string what)
        {
            var i = ids.to(ScalarType.Int64, logits.device).flatten();
            if (i.numel() == 1) i = i.expand(batch);
            if (i.numel() != batch)
                throw new ArgumentException($"{what} tokens must be one per example ({batch}), got {i.numel()}");
            return atPos.gather(1, i.unsqueeze(1)).squeeze(1);
        }
        return (Gather(correct, "correct") - Gather(incorrect, "incorrect")).MoveToOuterDisposeScope();
    }

    /// <summary>The mean logit difference over the batch.</summary>
    public static double Mean(Tensor logits, Tensor correct, Tensor incorrect, int position = -1)
    {
        using var d = PerExample(logits, correct, incorrect, position);
        using var m = d.to(ScalarType.Float64).mean();
        return m.item<double>();
    }

    /// <summary>A patching metric: logits → mean logit difference.</summary>
    public static Func<Tensor, double> Metric(Tensor correct, Tensor incorrect, int position = -1) =>
        logits => Mean(logits, correct, incorrect, position);

    /// <summary>A differentiable metric for gradient methods: logits → the mean logit difference as a scalar
    /// tensor.</summary>
    public static Func<Tensor, Tensor> Differentiable(Tensor correct, Tensor incorrect, int position = -1) =>
        logits => PerExample(logits, correct, incorrect, position).mean();

    /// <summary>The logits these metrics read: the two answers' columns at one position (for
    /// <see cref="PatchingOptions.MetricReads"/>).</summary>
    public static LogitsRead Reads(Tensor correct, Tensor incorrect, int position = -1)
    {
        using var scope = NewDisposeScope();
        long[] Ids(Tensor t) => t.to(ScalarType.Int64).cpu().flatten().data<long>().ToArray();
        return new LogitsRead([position], [.. Ids(correct), .. Ids(incorrect)]);
    }

    /// <summary>
    /// A patching metric normalised so that the corrupted run scores 0 and the clean run 1:
    /// (d − corruptedDiff) / (cleanDiff − corruptedDiff).
    /// </summary>
    public static Func<Tensor, double> NormalizedMetric(Tensor correct, Tensor incorrect, double cleanDiff,
        double corruptedDiff, int position = -1)
    {
        if (cleanDiff == corruptedDiff)
            throw new ArgumentException("the clean and corrupted logit differences are equal: nothing to normalise by");
        return logits => (Mean(logits, correct, incorrect, position) - corruptedDiff) / (cleanDiff - corruptedDiff);
    }
}
