using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// SAELens's run-time activation normalisation (sae.py 297-335): what encoding does to its input and
/// what decoding undoes, with the per-token statistics taken from the input. <c>none</c> and
/// <c>expected_average_only_in</c> are the identity at inference (the latter is folded into the
/// weights by <c>from_pretrained</c> when a release states its scaling factor).
/// </summary>
public sealed class ActivationNormalization
{
    readonly string _mode;
    Tensor? _scale, _mean, _std;

    ActivationNormalization(string mode) => _mode = mode;

    /// <summary>No normalisation: decoding returns the reconstruction unchanged.</summary>
    public static ActivationNormalization Identity { get; } = new("none");

    public static bool NeedsInput(string mode) => mode is "constant_norm_rescale" or "layer_norm";

    /// <summary>Normalises x [..., d_in] and returns the object that undoes it on a reconstruction.</summary>
    public static (Tensor Normalized, ActivationNormalization Undo) In(string mode, Tensor x, int dIn)
    {
        var n = new ActivationNormalization(mode);
        switch (mode)
        {
            case "constant_norm_rescale":
                n._scale = x.norm(-1, keepdim: true).reciprocal().mul_(Math.Sqrt(dIn));
                return (x * n._scale, n);
            case "layer_norm":
                n._mean = x.mean([-1], keepdim: true);
                var centred = x - n._mean;
                n._std = centred.std(-1, unbiased: true, keepdim: true);
                return (centred / (n._std + 1e-5), n);
            default:
                return (x, n);
        }
    }

    public Tensor Out(Tensor reconstruction) => _mode switch
    {
        "constant_norm_rescale" => reconstruction / _scale!,
        "layer_norm" => reconstruction * _std! + _mean!,
        _ => reconstruction,
    };
}
