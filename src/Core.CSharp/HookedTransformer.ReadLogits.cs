using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// The tail of the forward (ln_final, unembed, the output soft cap) for only the logits a metric reads, from
/// the residual stream a run with stop_at_layer = n_layers returns. A batch-1 forward at GPT-2 small's shape
/// spends about a third of its time in the 50,257-wide unembedding of every position; a metric of the last
/// position's logit difference needs two columns of one position.
/// </summary>
public sealed partial class HookedTransformer
{
    /// <summary>
    /// The logits <paramref name="reads"/> names, [batch, |positions|, |tokens|], from the residual stream after
    /// the last block [batch, pos, d_model] (differentiable). While a hook is attached to ln_final or the
    /// unembedding, every position and column is computed (so the hooks see what a full forward shows them)
    /// and the read ones are selected.
    /// </summary>
    public Tensor ReadLogits(Tensor residual, LogitsRead reads)
    {
        if (residual.dim() != 3 || residual.shape[2] != Config.DModel)
            throw new ArgumentException($"ReadLogits takes the residual stream after the last block [batch, pos, " +
                $"d_model = {Config.DModel}] (got shape [{string.Join(", ", residual.shape)}])");
        using var scope = NewDisposeScope();
        long batch = residual.shape[0], vocab = unembed.W_U.shape[1];
        var positions =
            reads.Positions is null ? null : tensor(reads.PositionIndices(residual.shape[1]), device: residual.device);
        var columns = reads.Tokens is null ? null : tensor(reads.TokenIndices(vocab), device: residual.device);
        Tensor logits;
        if (FinalHooksAttached)
        {
            var x = ln_final is null ? residual : ln_final.forward(residual);
            logits = unembed.forward(x);
            if (positions is not null) logits = logits.index_select(1, positions);
            if (columns is not null) logits = logits.index_select(2, columns);
        }
        else
        {
            var x = positions is null ? residual : residual.index_select(1, positions);
            if (ln_final is not null) x = ln_final.forward(x);
            var w = columns is null ? unembed.W_U : unembed.W_U.index_select(1, columns);
            var b = columns is null ? unembed.b_U : unembed.b_U.index_select(0, columns);
            logits = addmm(b, x.reshape(-1, x.shape[^1]), w, 1, 1).view(batch, x.shape[1], w.shape[1]);
        }
        if (Config.OutputLogitsSoftCap > 0)
            logits = logits.div(Config.OutputLogitsSoftCap).tanh_().mul_(Config.OutputLogitsSoftCap);
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>Whether a hook (or a splice) sits on ln_final or the unembedding.</summary>
    internal bool FinalHooksAttached =>
        (ln_final?.HasHooks ?? false) || unembed.HookIn.HasHooks || unembed.HookOut.HasHooks;

    /// <summary>Whether any hook point has a hook or a splice (a batched sweep then runs one cell per
    /// forward).</summary>
    internal bool AnyHooksAttached => _hookDict.Values.Any(h => h.HasHooks);
}
