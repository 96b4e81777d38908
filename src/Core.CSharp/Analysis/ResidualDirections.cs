using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// TransformerLens's <c>tokens_to_residual_directions</c>: the residual-stream direction whose dot
/// product (after the final norm) is a token's logit, W_U[:, token].
/// </summary>
public static class ResidualDirections
{
    /// <summary>W_U[:, tokens] moved to the last axis: [d_model] for a scalar token, [..., d_model] for a tensor of
    /// tokens.</summary>
    public static Tensor OfTokens(HookedTransformer model, Tensor tokens)
    {
        if (tokens.dtype is not (ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Byte
            or ScalarType.Int8))
            throw new ArgumentException($"tokens must be integer token ids, not {tokens.dtype}");
        long vocab = model.W_U.shape[1];
        using var scope = NewDisposeScope();
        var flat = tokens.to(ScalarType.Int64, model.Device).flatten();
        if (flat.numel() > 0)
        {
            long lo = flat.min().item<long>(), hi = flat.max().item<long>();
            if (lo < 0 || hi >= vocab)
                throw new ArgumentOutOfRangeException(nameof(tokens),
                    $"token ids must be in [0, {vocab}); got {(lo < 0 ? lo : hi)}");
        }
        var directions = model.W_U.index_select(1, flat).mT; // [n, d_model]
        return directions.reshape([.. tokens.shape, model.W_U.shape[0]]).MoveToOuterDisposeScope();
    }

    /// <summary>W_U[:, token] [d_model].</summary>
    public static Tensor OfToken(HookedTransformer model, long token)
    {
        using var t = tensor(token);
        return OfTokens(model, t);
    }
}
