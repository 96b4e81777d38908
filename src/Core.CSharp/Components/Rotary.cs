using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>Rotary position embeddings as TransformerLens computes them (calculate_sin_cos_rotary,
/// rotate_every_two).</summary>
public static class Rotary
{
    /// <summary>
    /// sin and cos tables [n_ctx, rotary_dim], computed in float32 (float64 for float64 models).
    /// <paramref name="linearScaling"/> multiplies the (unscaled) wavelengths, as TransformerLens's
    /// rotary_scaling_factor does for global layers.
    /// </summary>
    public static (Tensor Sin, Tensor Cos) SinCos(int rotaryDim, int nCtx, double baseFreq, bool adjacentPairs,
        ScalarType dtype, HookedTransformerConfig? ntkByParts = null, double linearScaling = 1.0)
    {
        using var scope = NewDisposeScope();
        var hp = dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
        var pos = arange(nCtx, dtype: hp);
        var dim = arange(rotaryDim / 2, dtype: hp);
        var freq = ntkByParts is { UseNtkByPartsRope: true } cfg
            ? NtkByPartsInverseFrequencies(rotaryDim, baseFreq, cfg, hp).reciprocal()
            : pow(tensor(baseFreq, dtype: hp), dim / (rotaryDim / 2.0));
        if (linearScaling != 1.0 && ntkByParts is not { UseNtkByPartsRope: true }) freq = freq * linearScaling;
        freq = adjacentPairs ? freq.repeat_interleave(2) : cat([freq, freq]);
        var angles = pos.unsqueeze(1) / freq.unsqueeze(0);
        return (angles.sin().to(dtype).DetachFromDisposeScope(), angles.cos().to(dtype).DetachFromDisposeScope());
    }

    /// <summary>
    /// Llama 3's NTK-by-parts inverse frequencies (HF's rope_type "llama3", as TransformerLens computes them):
    /// wavelengths longer than original_ctx/low_freq_factor are slowed by factor, shorter than
    /// original_ctx/high_freq_factor kept, and those between interpolated smoothly.
    /// </summary>
    static Tensor NtkByPartsInverseFrequencies(int rotaryDim, double baseFreq, HookedTransformerConfig cfg,
        ScalarType hp)
    {
        var invFreq = pow(tensor(baseFreq, dtype: hp), arange(0, rotaryDim, 2, dtype: hp) / rotaryDim).reciprocal();
        double factor = cfg.NtkByPartsFactor, low = cfg.NtkByPartsLowFreqFactor, high = cfg.NtkByPartsHighFreqFactor;
        double oldCtx = cfg.NtkOriginalCtxLen;
        var wavelen = invFreq.reciprocal() * (2 * Math.PI);
        var scaled = where(wavelen > oldCtx / low, invFreq / factor, invFreq);
        var smooth = (wavelen.reciprocal() * oldCtx - low) / (high - low);
        var smoothed = (smooth.neg() + 1) * scaled / factor + smooth * scaled;
        var medium = (wavelen < oldCtx / high).logical_not().logical_and((wavelen > oldCtx / low).logical_not());
        return where(medium, smoothed, scaled);
    }

    /// <summary>Rotates the first rotary_dim dims of x [b, pos, heads, d_head], positions starting at offset.</summary>
    public static Tensor Apply(Tensor x, Tensor sin, Tensor cos, long offset, bool adjacentPairs)
    {
        using var scope = NewDisposeScope();
        long rotaryDim = sin.shape[1], pos = x.shape[1];
        if (offset + pos > sin.shape[0])
            throw new ArgumentException(
                $"sequence of {offset + pos} positions exceeds the model's context n_ctx = {sin.shape[0]}");
        var xRot = x[.., .., .., ..(int)rotaryDim];
        var flipped = RotateEveryTwo(xRot, adjacentPairs);
        var c = cos.narrow(0, offset, pos).unsqueeze(0).unsqueeze(2);
        var s = sin.narrow(0, offset, pos).unsqueeze(0).unsqueeze(2);
        var rotated = xRot * c + flipped * s;
        var result = rotaryDim == x.shape[3] ? rotated : cat([rotated, x[.., .., .., (int)rotaryDim..]], -1);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Rotates x [b, pos, heads, d_head] at per-row positions [b, pos] (TransformerLens's apply_rotary with an
    /// attention mask: rotary_cos[offset_position_ids]).
    /// </summary>
    public static Tensor ApplyAt(Tensor x, Tensor sin, Tensor cos, Tensor positionIds, bool adjacentPairs)
    {
        using var scope = NewDisposeScope();
        long rotaryDim = sin.shape[1];
        var xRot = x[.., .., .., ..(int)rotaryDim];
        var flipped = RotateEveryTwo(xRot, adjacentPairs);
        var flat = positionIds.flatten();
        var c = cos.index_select(0, flat).view(positionIds.shape[0], positionIds.shape[1], 1, rotaryDim);
        var s = sin.index_select(0, flat).view(positionIds.shape[0], positionIds.shape[1], 1, rotaryDim);
        var rotated = xRot * c + flipped * s;
        var result = rotaryDim == x.shape[3] ? rotated : cat([rotated, x[.., .., .., (int)rotaryDim..]], -1);
        return result.MoveToOuterDisposeScope();
    }

    static Tensor RotateEveryTwo(Tensor x, bool adjacentPairs)
    {
        if (adjacentPairs)
        {
            var even = x[.., .., .., TensorIndex.Slice(0, null, 2)];
            var odd = x[.., .., .., TensorIndex.Slice(1, null, 2)];
            return stack([-odd, even], -1).flatten(-2);
        }
        long n = x.shape[^1] / 2;
        return cat([-x[.., .., .., (int)n..], x[.., .., .., ..(int)n]], -1);
    }
}
