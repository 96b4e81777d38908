using TorchSharp;
using static TorchSharp.torch;

namespace Lens;

public static class LossFunctions
{
    /// <summary>
    /// TransformerLens's lm_cross_entropy_loss: −log_softmax(logits)[:, :-1] at tokens[:, 1:];
    /// per token [batch, pos − 1], or its mean.
    /// </summary>
    public static Tensor LmCrossEntropy(Tensor logits, Tensor tokens, bool perToken = false)
    {
        using var scope = NewDisposeScope();
        var logProbs = logits.to(ScalarType.Float32).log_softmax(-1);
        long pos = logits.shape[1];
        var predicted = logProbs.narrow(1, 0, pos - 1).gather(-1, tokens.narrow(1, 1, pos - 1).unsqueeze(-1)).squeeze(-1);
        var loss = perToken ? -predicted : -predicted.mean();
        return loss.MoveToOuterDisposeScope();
    }
}
