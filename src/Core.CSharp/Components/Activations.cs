using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>TransformerLens's activation functions.</summary>
public static class Activations
{
    public static Func<Tensor, Tensor> Get(ActivationFunction function) => function switch
    {
        ActivationFunction.Relu => x => nn.functional.relu(x),
        ActivationFunction.Gelu => x => nn.functional.gelu(x),
        ActivationFunction.GeluPytorchTanh => x => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        ActivationFunction.Silu => x => nn.functional.silu(x),
        ActivationFunction.GeluNew => GeluNew,
        ActivationFunction.GeluFast => GeluFast,
        ActivationFunction.Solu or ActivationFunction.SoluLn => x => x * x.softmax(-1),
        _ => throw new ArgumentOutOfRangeException(nameof(function), function, "no such activation function"),
    };

    /// <summary>
    /// 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))), GPT-2's GELU (TransformerLens's gelu_new): the same
    /// formula as PyTorch's gelu with the tanh approximation, which computes it in one fused pass.
    /// </summary>
    public static Tensor GeluNew(Tensor x) => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh);

    public static Tensor GeluFast(Tensor x)
    {
        using var scope = NewDisposeScope();
        return (x * 0.5 * ((x * 0.7978845608 * (x * x * 0.044715 + 1.0)).tanh() + 1.0)).MoveToOuterDisposeScope();
    }
}
