using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Demo;

/// <summary>
/// The five properties <c>demo-attn-only-2l</c> is made to have, measured with the analysis library on
/// repeated random tokens (BOS + n ids + the same n ids, ids from the model's curriculum range): the best
/// layer-0 previous-token and layer-1 induction stripe scores, the loss on each repeat, the second repeat's
/// loss with the best induction head zero-ablated, and the K-composition scores into that head.
/// </summary>
public sealed record DemoModelProperties(
    int PreviousTokenHead, double PreviousTokenScore,
    int InductionHead, double InductionScore,
    double FirstRepeatLoss, double SecondRepeatLoss, double AblatedSecondRepeatLoss,
    IReadOnlyList<double> KCompositionIntoInductionHead)
{
    public double LossRatio => SecondRepeatLoss / FirstRepeatLoss;
    public double AblationFactor => AblatedSecondRepeatLoss / SecondRepeatLoss;
    public int StrongestKCompositionHead => KCompositionIntoInductionHead.Select((s, h) => (s, h)).MaxBy(x => x.s).h;

    /// <summary>Measured on a batch of <paramref name="batch"/> rows of n = <paramref name="n"/> tokens, twice, drawn
    /// with <paramref name="seed"/>.</summary>
    public static DemoModelProperties Measure(HookedTransformer model, int n = 50, int batch = 8, ulong seed = 0)
    {
        using var scope = NewDisposeScope();
        using var rep = RepeatedTokens.ForModel(model, n, 2, batch, seed);
        return Measure(model, rep);
    }

    public static DemoModelProperties Measure(HookedTransformer model, RepeatedTokens rep)
    {
        using var scope = NewDisposeScope();
        int n = rep.Length, heads = model.Config.NHeads;
        using var induction = HeadScores.Induction(model, rep);
        using var previous = HeadScores.PreviousToken(model, rep);
        int ind = Enumerable.Range(0, heads).MaxBy(h => induction[1, h]);
        int prev = Enumerable.Range(0, heads).MaxBy(h => previous[0, h]);
        var (first, second) = RepeatLosses(model, rep.Tokens, n, []);
        var (_, ablated) = RepeatLosses(model, rep.Tokens, n, [Ablation.Zero(new AblationTarget.Head(1, ind))]);
        using var k = Composition.AllScores(model, "K");
        var kInto = Enumerable.Range(0, heads).Select(h => (double)k[0, h, 1, ind]).ToArray();
        return new DemoModelProperties(prev, previous[0, prev], ind, induction[1, ind], first, second, ablated, kInto);
    }

    /// <summary>Mean loss predicting the first repeat's tokens 2..n and the second repeat's n tokens (loss_per_token[:,
    /// i] predicts token i + 1; BOS is token 0).</summary>
    public static (double First, double Second) RepeatLosses(HookedTransformer model, Tensor tokens, int n,
        IEnumerable<Ablation> ablations)
    {
        using var scope = NewDisposeScope();
        using var output = Ablation.Run(model, tokens, ablations, ReturnType.Loss, lossPerToken: true);
        var perToken = output.Loss!;
        return (perToken.narrow(1, 0, n - 1).mean().item<float>(), perToken.narrow(1, n, n).mean().item<float>());
    }

    /// <summary>Each property against its target, as rows of (property, target, measured, met).</summary>
    public IReadOnlyList<(string Property, string Target, string Measured, bool Met)> Checks() =>
    [
        ("previous-token head in layer 0 (stripe score)", ">= 0.8", $"L0H{PreviousTokenHead} {PreviousTokenScore:F3}",
            PreviousTokenScore >= 0.8),
        ("induction head in layer 1 (stripe score)", ">= 0.8", $"L1H{InductionHead} {InductionScore:F3}",
            InductionScore >= 0.8),
        ("second-repeat loss / first-repeat loss", "<= 0.2",
            $"{LossRatio:F3} ({FirstRepeatLoss:F3} -> {SecondRepeatLoss:F3})", LossRatio <= 0.2),
        ($"zero-ablating L1H{InductionHead}: second-repeat loss x", ">= 3", $"x{AblationFactor:F2}",
            AblationFactor >= 3), ($"K-composition into L1H{InductionHead} largest from the previous-token head", "yes",
            $"L0H{StrongestKCompositionHead} " +
            $"({string.Join(", ", KCompositionIntoInductionHead.Select((s, h) => $"H{h} {s:F3}"))})",
            StrongestKCompositionHead == PreviousTokenHead),
    ];
}
