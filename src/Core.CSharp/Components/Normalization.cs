using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

/// <summary>
/// TransformerLens's LayerNorm, LayerNormPre, RMSNorm and RMSNormPre in one component: centre (LN
/// only), divide by <c>hook_scale</c> = sqrt(mean(x²) + eps), record <c>hook_normalized</c> (before
/// the gain and bias, as TransformerLens 3.x does), then apply w (and b for LN) unless it is a Pre
/// variant whose weights were folded into the next layer.
/// </summary>
public sealed class Normalization : nn.Module
{
    public readonly NormalizationKind Kind;
    readonly double _eps;
#pragma warning disable IDE1006 // TransformerLens's parameter names
    public Parameter? w;
    public Parameter? b;
#pragma warning restore IDE1006
    public readonly HookPoint HookScale;
    public readonly HookPoint HookNormalized;

    public Normalization(HookPointFactory hooks, NormalizationKind kind, int dim, double eps, ScalarType dtype)
        : base(hooks.Path)
    {
        if (kind == NormalizationKind.None)
            throw new ArgumentException($"{hooks.Path}: a normalization needs a kind (LN, LNPre, RMS or RMSPre)");
        Kind = kind;
        _eps = eps;
        if (kind is NormalizationKind.LN or NormalizationKind.RMS) w = new Parameter(ones(dim, dtype: dtype));
        if (kind == NormalizationKind.LN) b = new Parameter(zeros(dim, dtype: dtype));
        HookScale = hooks.Create("hook_scale");
        HookNormalized = hooks.Create("hook_normalized");
        RegisterComponents();
    }

    public bool Centers => Kind is NormalizationKind.LN or NormalizationKind.LNPre;

    /// <summary>Whether a hook (or a splice) sits on hook_scale or hook_normalized.</summary>
    public bool HasHooks => HookScale.HasHooks || HookNormalized.HasHooks;

    public Tensor forward(Tensor x)
    {
        // Nobody looks at the scale or the normalized value: one fused kernel computes the same LayerNorm.
        if (Centers && !HasHooks && x.dtype is ScalarType.Float32 or ScalarType.Float64)
            return nn.functional.layer_norm(x, [x.shape[^1]], w, b, _eps);
        using var scope = NewDisposeScope();
        var lowPrecision = x.dtype is not (ScalarType.Float32 or ScalarType.Float64);
        var input = lowPrecision ? x.to(ScalarType.Float32) : x;
        Tensor meanSquare;
        if (Centers)
        {
            // mean((x − mean)²) is the biased variance: one pass gives it with the mean.
            var (variance, mean) = input.var_mean(-1, unbiased: false, keepdim: true);
            input = input - mean;
            meanSquare = variance;
        }
        else meanSquare = input.square().mean([-1L], keepdim: true);
        var scale = HookScale.Run(CorrectlyRoundedSqrt(meanSquare.add_(_eps)));
        var y = HookNormalized.Run(input / scale);
        if (w is not null) y = b is not null ? addcmul(b, y, w, 1) : y * w;
        else if (b is not null) y = y + b;
        if (lowPrecision) y = y.to(x.dtype);
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The square root rounded correctly, as the fixtures' PyTorch gives it: libtorch's float32 sqrt (in
    /// TorchSharp 0.107) is one ulp off for about 15% of inputs, and gemma2like's large activations amplify
    /// one ulp of an RMS scale into 1e-4s on the logits. In float64 and rounded back the result is exact.
    /// </summary>
    static Tensor CorrectlyRoundedSqrt(Tensor x) =>
        x.dtype == ScalarType.Float32 ? x.to(ScalarType.Float64).sqrt_().to(ScalarType.Float32) : x.sqrt_();
}
