using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>One head's zero-ablation effect on the repeat losses of an <see cref="InductionStudy"/>.
/// <see cref="Ratio"/> = ablated second-copy loss / clean second-copy loss; <see cref="FirstRepeatLoss"/>
/// is the ablated first-copy loss, to tell a head that serves repetition from one every prediction needs.</summary>
public sealed record HeadAblationEffect(int Layer, int Head, double FirstRepeatLoss, double SecondRepeatLoss,
    double Ratio)
{
    public string Label => $"L{Layer}H{Head}";
}

/// <summary>
/// The induction experiment on repeated random tokens, in one run: stripe induction, previous-token and
/// duplicate-token scores of every head (<see cref="HeadScores"/>), the mean loss on the first and on
/// the second copy of the block, and, for every head, both losses with that head zero-ablated (its
/// slice of <c>hook_z</c>) and the ratio of the ablated to the clean second-copy loss.
/// <para>
/// Repeat losses leave out each copy's first token, which no mechanism can predict from what came
/// before: with block length n, copy r covers the predictions of its tokens 2..n (n − 1 per row),
/// averaged over those positions and the batch. A model with working induction has a much lower loss
/// on the second copy than on the first; ablating a head it relies on raises the second-copy loss.
/// Only the first two copies are measured when the tokens repeat more often.
/// </para>
/// <para>
/// Two controls replace each row's second copy and measure the loss at the same positions:
/// <see cref="ShuffledSecondRepeatLoss"/> puts it in another order (a Fisher–Yates shuffle by
/// <see cref="SplitMix64"/>(controlSeed), row by row): the same tokens after the same first copy, so a
/// model that only learns "tokens seen before are likely" gains as much on it as on the ordered copy,
/// and only order-using (induction-like) mechanisms make the ordered copy easier.
/// <see cref="FreshSecondRepeatLoss"/> draws new tokens from the same range instead
/// (low + NextBelow(high − low) from another <see cref="SplitMix64"/>(controlSeed)): what is left of
/// the first-to-second-copy drop without any repetition (a position effect). The control seed defaults
/// to one derived from the tokens' seed by a SplitMix64 output: the tokens' own seed would redraw the
/// very blocks of the first copy, and a seed a multiple of the SplitMix64 increment away would redraw
/// them shifted.
/// </para>
/// Owns its score tables.
/// </summary>
public sealed class InductionStudy : IDisposable
{
    InductionStudy(string tokensDescription, HeadScoreTable induction, HeadScoreTable previousToken,
        HeadScoreTable duplicateToken,
        double firstRepeatLoss, double secondRepeatLoss, double shuffledSecondRepeatLoss, double freshSecondRepeatLoss,
        IReadOnlyList<HeadAblationEffect> ablations)
    {
        TokensDescription = tokensDescription; Induction = induction; PreviousToken = previousToken; DuplicateToken =
            duplicateToken;
        FirstRepeatLoss = firstRepeatLoss; SecondRepeatLoss = secondRepeatLoss; ShuffledSecondRepeatLoss =
            shuffledSecondRepeatLoss;
        FreshSecondRepeatLoss = freshSecondRepeatLoss;
        Ablations = ablations;
    }

    /// <summary>What the study ran on (<see cref="RepeatedTokens.ToString"/>).</summary>
    public string TokensDescription { get; }
    public HeadScoreTable Induction { get; }
    public HeadScoreTable PreviousToken { get; }
    public HeadScoreTable DuplicateToken { get; }
    /// <summary>Mean loss predicting tokens 2..n of the first copy.</summary>
    public double FirstRepeatLoss { get; }
    /// <summary>Mean loss predicting tokens 2..n of the second copy.</summary>
    public double SecondRepeatLoss { get; }
    /// <summary>Mean loss predicting tokens 2..n of the second copy when that copy is shuffled (the control).</summary>
    public double ShuffledSecondRepeatLoss { get; }
    /// <summary>Mean loss at the second copy's positions 2..n when new random tokens stand there (the
    /// control).</summary>
    public double FreshSecondRepeatLoss { get; }
    /// <summary>Every head's ablation effect, layer by layer, head by head (empty when the study skipped
    /// them).</summary>
    public IReadOnlyList<HeadAblationEffect> Ablations { get; }

    public HeadAblationEffect Ablation(int layer, int head)
    {
        int nHeads = Induction.NHeads;
        if (Ablations.Count == 0)
            throw new InvalidOperationException("this study was run without head ablations (ablateHeads: false)");
        if (layer < 0 || layer >= Induction.NLayers || head < 0 || head >= nHeads)
            throw new ArgumentOutOfRangeException(nameof(layer),
                $"L{layer}H{head} is not a head of this {Induction.NLayers}-layer, {nHeads}-head model");
        return Ablations[layer * nHeads + head];
    }

    /// <summary>The ablation effects, the head whose ablation raises the second-copy loss most first.</summary>
    public IReadOnlyList<HeadAblationEffect> RankedAblations() =>
        Ablations.OrderByDescending(a => a.Ratio).ThenBy(a => a.Layer).ThenBy(a => a.Head).ToList();

    /// <summary>
    /// Runs the study on <paramref name="tokens"/> (at least 2 copies of a block of at least 2 tokens).
    /// With <paramref name="ablateHeads"/> false the per-head ablations (one forward pass per head) are
    /// skipped and <see cref="Ablations"/> is empty.
    /// </summary>
    public static InductionStudy Run(HookedTransformer model, RepeatedTokens tokens, ulong? controlSeed = null,
        bool ablateHeads = true)
    {
        if (tokens.Repeats < 2)
            throw new ArgumentException($"the induction study needs the block repeated at least twice, " +
                $"got {tokens.Repeats} cop{(tokens.Repeats == 1 ? "y" : "ies")}");
        if (tokens.Length < 2)
            throw new ArgumentException($"the induction study needs blocks of at least 2 tokens (each copy's first " +
                $"token is left out), got {tokens.Length}");
        if (tokens.Tokens.shape[1] > model.Config.NCtx)
            throw new ArgumentException(
                $"the sequences have {tokens.Tokens.shape[1]} tokens but the model's context is {model.Config.NCtx}");
        var tables = new List<HeadScoreTable>();
        try
        {
            tables.Add(HeadScores.Induction(model, tokens));
            tables.Add(HeadScores.PreviousToken(model, tokens));
            tables.Add(HeadScores.DuplicateToken(model, tokens));
            var (first, second) =
                RepeatLosses(model.Forward(tokens.Tokens, ReturnType.Loss, lossPerToken: true), tokens);
            ulong seed = controlSeed ?? ControlSeed(tokens);
            double shuffled, fresh;
            using (var control = ShuffleSecondCopy(tokens, seed))
                shuffled = RepeatLosses(model.Forward(control, ReturnType.Loss, lossPerToken: true), tokens).Second;
            using (var control = FreshSecondCopy(tokens, seed))
                fresh = RepeatLosses(model.Forward(control, ReturnType.Loss, lossPerToken: true), tokens).Second;
            var cfg = model.Config;
            var effects = new List<HeadAblationEffect>(cfg.NLayers * cfg.NHeads);
            for (int layer = 0; layer < (ablateHeads ? cfg.NLayers : 0); layer++)
                for (int head = 0; head < cfg.NHeads; head++)
                {
                    var ablation = Analysis.Ablation.Zero(new AblationTarget.Head(layer, head));
                    var output =
                        Analysis.Ablation.Run(model, tokens.Tokens, [ablation], ReturnType.Loss, lossPerToken: true);
                    var (ablatedFirst, ablatedSecond) = RepeatLosses(output, tokens);
                    effects.Add(new HeadAblationEffect(layer, head, ablatedFirst, ablatedSecond,
                        ablatedSecond / second));
                }
            return new InductionStudy(tokens.ToString(), tables[0], tables[1], tables[2], first, second, shuffled,
                fresh, effects);
        }
        catch
        {
            foreach (var t in tables) t.Dispose();
            throw;
        }
    }

    /// <summary>The default seed of the controls: SplitMix64(tokens.Seed XOR
    /// 0xC0A75EED0FC0B1E5).NextUInt64().</summary>
    public static ulong ControlSeed(RepeatedTokens tokens) =>
        new SplitMix64(tokens.Seed ^ 0xC0A75EED0FC0B1E5UL).NextUInt64();

    /// <summary>A copy of the tokens with each row's second copy shuffled (Fisher–Yates, SplitMix64(seed), row by
    /// row).</summary>
    public static Tensor ShuffleSecondCopy(RepeatedTokens tokens, ulong seed)
    {
        var rng = new SplitMix64(seed);
        return ReplaceSecondCopy(tokens, copy =>
        {
            for (int i = copy.Length - 1; i > 0; i--)
            {
                int j = (int)rng.NextBelow(i + 1);
                (copy[i], copy[j]) = (copy[j], copy[i]);
            }
        });
    }

    /// <summary>A copy of the tokens with each row's second copy replaced by new draws from [Low, High)
    /// (SplitMix64(seed), row by row).</summary>
    public static Tensor FreshSecondCopy(RepeatedTokens tokens, ulong seed)
    {
        var rng = new SplitMix64(seed);
        return ReplaceSecondCopy(tokens, copy =>
        {
            for (int i = 0; i < copy.Length; i++) copy[i] = tokens.Low + rng.NextBelow(tokens.High - tokens.Low);
        });
    }

    static Tensor ReplaceSecondCopy(RepeatedTokens tokens, Action<long[]> change)
    {
        using var cpu = tokens.Tokens.to(ScalarType.Int64).cpu().contiguous();
        var ids = cpu.data<long>().ToArray();
        long width = cpu.shape[1];
        int n = tokens.Length;
        var copy = new long[n];
        for (long b = 0; b < cpu.shape[0]; b++)
        {
            long start = b * width + tokens.Offset + n;
            Array.Copy(ids, start, copy, 0, n);
            change(copy);
            Array.Copy(copy, 0, ids, start, n);
        }
        return tensor(ids, cpu.shape, dtype: ScalarType.Int64, device: tokens.Tokens.device);
    }

    /// <summary>Mean per-token loss over copy 0 and copy 1, tokens 2..n of each; disposes the output.</summary>
    static (double First, double Second) RepeatLosses(ModelOutput output, RepeatedTokens tokens)
    {
        using var _ = output;
        using var scope = NewDisposeScope();
        var perToken = output.Loss!;                    // [batch, pos − 1]; index p predicts token p + 1
        int n = tokens.Length, offset = tokens.Offset;
        // token k (1..n−1) of copy r sits at offset + r·n + k and is predicted at index offset + r·n + k − 1
        double Copy(int r) => perToken.narrow(1, offset + r * n, n - 1).to(ScalarType.Float64).mean().item<double>();
        return (Copy(0), Copy(1));
    }

    /// <summary>The score tables, the repeat losses and the ranked ablation effects as Markdown.</summary>
    public string ToMarkdown(int topAblations = 10)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"Tokens: {TokensDescription}").AppendLine();
        sb.AppendLine(inv,
            $"Loss, first copy: {FirstRepeatLoss:F3}; second copy: {SecondRepeatLoss:F3} " +
            $"(difference {FirstRepeatLoss - SecondRepeatLoss:F3})").AppendLine();
        sb.AppendLine(inv,
            $"Controls at the second copy's positions: shuffled copy {ShuffledSecondRepeatLoss:F3}; fresh random " +
            $"tokens {FreshSecondRepeatLoss:F3}").AppendLine();
        AppendTable(sb, "Induction score", Induction);
        AppendTable(sb, "Previous-token score", PreviousToken);
        AppendTable(sb, "Duplicate-token score", DuplicateToken);
        if (Ablations.Count == 0) return sb.ToString();
        sb.AppendLine("| rank | head | ablated 2nd-copy loss | ratio to clean | ablated 1st-copy loss | ratio to " +
            "clean | induction | previous-token |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        int rank = 0;
        foreach (var a in RankedAblations().Take(topAblations))
            sb.AppendLine(inv,
                $"| {++rank} | {a.Label} | {a.SecondRepeatLoss:F3} | {a.Ratio:F3} | {a.FirstRepeatLoss:F3} " +
                $"| {a.FirstRepeatLoss / FirstRepeatLoss:F3} | {Induction[a.Layer, a.Head]:F3} " +
                $"| {PreviousToken[a.Layer, a.Head]:F3} |");
        return sb.ToString();
    }

    static void AppendTable(StringBuilder sb, string title, HeadScoreTable table)
    {
        var inv = CultureInfo.InvariantCulture;
        sb.Append("| ").Append(title).Append(" |");
        for (int h = 0; h < table.NHeads; h++) sb.Append(inv, $" H{h} |");
        sb.AppendLine().Append("| ---");
        for (int h = 0; h < table.NHeads; h++) sb.Append(" | ---");
        sb.AppendLine(" |");
        for (int l = 0; l < table.NLayers; l++)
        {
            sb.Append(inv, $"| L{l} |");
            for (int h = 0; h < table.NHeads; h++) sb.Append(inv, $" {table[l, h]:F3} |");
            sb.AppendLine();
        }
        sb.AppendLine();
    }

    public void Dispose() { Induction.Dispose(); PreviousToken.Dispose(); DuplicateToken.Dispose(); }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"induction study on {TokensDescription}: loss {FirstRepeatLoss:F3} → {SecondRepeatLoss:F3}");
}
