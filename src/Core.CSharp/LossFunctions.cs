using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

public static class LossFunctions
{
    /// <summary>
    /// TransformerLens's lm_cross_entropy_loss: −log_softmax(logits)[:, :-1] at tokens[:, 1:];
    /// per token [batch, pos − 1], or its mean. With an attention mask [batch, pos] the pair (t, t + 1)
    /// counts only when both are real tokens: per-token losses are 0 elsewhere and the mean divides by the
    /// number of counted pairs.
    /// </summary>
    public static Tensor LmCrossEntropy(Tensor logits, Tensor tokens, bool perToken = false,
        Tensor? attentionMask = null)
    {
        using var scope = NewDisposeScope();
        var logProbs = logits.to(ScalarType.Float32).log_softmax(-1);
        long pos = logits.shape[1];
        var predicted =
            logProbs.narrow(1, 0, pos - 1).gather(-1, tokens.narrow(1, 1, pos - 1).unsqueeze(-1)).squeeze(-1);
        Tensor loss;
        if (attentionMask is null) loss = perToken ? -predicted : -predicted.mean();
        else
        {
            var real = attentionMask.to(ScalarType.Bool);
            var pairs = real.narrow(1, 0, pos - 1).logical_and(real.narrow(1, 1, pos - 1)).to(predicted.dtype);
            var counted = predicted * pairs;
            loss = perToken ? -counted : -counted.sum() / pairs.sum();
        }
        return loss.MoveToOuterDisposeScope();
    }
}
