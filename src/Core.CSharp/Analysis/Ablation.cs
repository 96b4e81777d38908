using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// An ablation as data: a target and a mode. <see cref="Prepare(HookedTransformer)"/> turns it into
/// hooks (running the reference or source input once for mean and resample ablations);
/// <see cref="Run"/> runs a model with several ablations at once.
/// </summary>
public sealed record Ablation(AblationTarget Target, AblationMode Mode)
{
    public static Ablation Zero(AblationTarget target) => new(target, new AblationMode.Zero());
    public static Ablation Mean(AblationTarget target, Tensor referenceTokens) =>
        new(target, new AblationMode.Mean(referenceTokens));
    public static Ablation Resample(AblationTarget target, Tensor sourceTokens, ulong seed) =>
        new(target, new AblationMode.Resample(sourceTokens, seed));

    /// <summary>The hooks that apply this ablation (dispose them after the run).</summary>
    public AblationHooks Prepare(HookedTransformer model) => AblationHooks.Build(model, [this]);

    /// <summary>The hooks that apply all these ablations together.</summary>
    public static AblationHooks Prepare(HookedTransformer model, IEnumerable<Ablation> ablations) =>
        AblationHooks.Build(model, ablations);

    /// <summary>Runs the model on tokens with the ablations applied; the hooks are removed afterwards.</summary>
    public static ModelOutput Run(HookedTransformer model, Tensor tokens, IEnumerable<Ablation> ablations,
        ReturnType returnType = ReturnType.Both, bool lossPerToken = false)
    {
        using var hooks = Prepare(model, ablations);
        return model.RunWithHooks(tokens, hooks.Specs, returnType, lossPerToken);
    }

    public override string ToString() => $"{Mode.GetType().Name} ablation of {Target}";
}
