using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>TransformerLens's activation functions by their config names.</summary>
public static class Activations
{
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "relu" => x => nn.functional.relu(x),
        "gelu" => x => nn.functional.gelu(x),
        "gelu_pytorch_tanh" => x => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "silu" => x => nn.functional.silu(x),
        "gelu_new" => GeluNew,
        "gelu_fast" => GeluFast,
        "solu" or "solu_ln" => x => x * x.softmax(-1),
        _ => throw new ArgumentException($"unknown activation function '{name}'"),
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
