using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Which entries of a hook's activation belong to real tokens under an attention mask [batch, pos] (1 real, 0 pad):
/// those whose positions are all real ([batch, pos, ...] by pos; attention scores and patterns
/// [batch, head, query, key] by query and key).
/// </summary>
public static class MaskedEntries
{
    /// <summary>A bool tensor of the activation's shape, true on real entries.</summary>
    public static Tensor Real(Tensor activation, string hookName, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        var real = attentionMask.to(ScalarType.Bool).to(activation.device);
        if (activation.dim() < 2 || activation.shape[0] != real.shape[0])
            throw new ArgumentException($"{hookName} [{string.Join(", ", activation.shape)}] does not match the " +
                $"attention mask [{string.Join(", ", attentionMask.shape)}]");
        Tensor entries;
        if (hookName.EndsWith(".hook_pattern", StringComparison.Ordinal)
            || hookName.EndsWith(".hook_attn_scores", StringComparison.Ordinal))
            entries = real.view(real.shape[0], 1, real.shape[1], 1)
                .logical_and(real.view(real.shape[0], 1, 1, real.shape[1])).expand_as(activation);
        else
        {
            var view = Enumerable.Repeat(1L, (int)activation.dim()).ToArray();
            (view[0], view[1]) = (real.shape[0], real.shape[1]);
            entries = real.view(view).expand_as(activation);
        }
        return entries.contiguous().MoveToOuterDisposeScope();
    }
}
