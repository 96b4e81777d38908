using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Lens;

/// <summary>
/// The identity as a custom autograd function: in the backward pass it hands the gradient of its
/// output to a hook point's backward hooks and passes on what they return (PyTorch's
/// BackwardHookFunction, which TransformerLens's backward hooks rely on). The hooks are those attached
/// when the activation was computed, as in PyTorch.
/// </summary>
internal sealed class BackwardHookNode : SingleTensorFunction<BackwardHookNode>
{
    public override string Name => "LensBackwardHook";

    public static Tensor Attach(Tensor activation, HookPoint hook, HookFunction[] hooks) =>
        apply(activation, hook, hooks);

    public override Tensor forward(AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("hook", vars[1]);
        ctx.save_data("hooks", vars[2]);
        // TorchSharp would fill a missing gradient from a cached tensor that the forward's dispose
        // scope has freed by then; a missing gradient stays missing instead.
        ctx.set_materialize_grads(false);
        return (Tensor)vars[0];
    }

    public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
    {
        // One entry per forward argument: the gradient for the activation, none for the hook point and hook list.
        if (gradOutput.IsInvalid) return [gradOutput, null!, null!];
        var hook = (HookPoint)ctx.get_data("hook");
        var hooks = (HookFunction[])ctx.get_data("hooks");
        return [hook.RunBackward(gradOutput, hooks), null!, null!];
    }
}
