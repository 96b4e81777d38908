using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// A stack of residual-stream pieces with a name for each: <see cref="Stack"/> is
/// [component, ...] and <see cref="Labels"/>[i] names <c>Stack[i]</c> (e.g. <c>0_pre</c>, <c>1_attn_out</c>,
/// <c>L0H3</c>, <c>L1N17</c>). Owns its tensor.
/// </summary>
public sealed class LabelledStack(Tensor stack, IReadOnlyList<string> labels) : IDisposable
{
    public Tensor Stack { get; } = stack.shape.Length > 0 && stack.shape[0] == labels.Count
        ? stack
        : throw new ArgumentException($"a stack of {(stack.shape.Length > 0 ? stack.shape[0] : 0)} components cannot " +
            $"carry {labels.Count} labels");

    public IReadOnlyList<string> Labels { get; } = labels;

    public int Count => Labels.Count;

    /// <summary>The component with this label (a new tensor handle the caller owns).</summary>
    public Tensor this[string label]
    {
        get
        {
            int i = IndexOf(label);
            return Stack[i];
        }
    }

    /// <summary>The position of a label in the stack; an unknown label lists the nearest valid ones.</summary>
    public int IndexOf(string label)
    {
        for (int i = 0; i < Labels.Count; i++) if (Labels[i] == label) return i;
        var near = Suggestions.Nearest(label, Labels, 3);
        throw new KeyNotFoundException($"no component '{label}' in this stack"
            + (near.Count > 0 ? $"; did you mean {string.Join(", ", near.Select(n => $"'{n}'"))}?" : ""));
    }

    public void Deconstruct(out Tensor stackOut, out IReadOnlyList<string> labelsOut)
    {
        stackOut = Stack;
        labelsOut = Labels;
    }

    public void Dispose() => Stack.Dispose();

    public override string ToString() =>
        $"LabelledStack [{string.Join(", ", Stack.shape)}] ({string.Join(", ", Labels)})";
}
