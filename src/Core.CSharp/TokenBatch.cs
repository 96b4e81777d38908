using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// Several texts as one batch: int64 tokens [batch, pos] padded to the longest text, and the attention
/// mask [batch, pos] (1 on real tokens, 0 on pads) that every forward, loss and generation needs to treat
/// each text as if it were alone. Owns both tensors.
/// </summary>
public sealed class TokenBatch(Tensor tokens, Tensor attentionMask) : IDisposable
{
    public Tensor Tokens => tokens;
    public Tensor AttentionMask => attentionMask;

    public void Deconstruct(out Tensor tokensOut, out Tensor maskOut) { tokensOut = tokens; maskOut = attentionMask; }

    public void Dispose() { tokens.Dispose(); attentionMask.Dispose(); }
}
