using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// What a stage that runs the model needs: the model, the current input and its tokens on the model's device,
/// with the experiment's interventions attached until disposed.
/// </summary>
internal sealed class StagePass : IDisposable
{
    readonly IDisposable hooks;

    /// <param name="command">names the statement in the error when there is no input
    /// (`score induction needs an input`).</param>
    /// <param name="masked">whether the stage passes <see cref="AttentionMask"/> on; a stage that does not
    /// refuses an input of texts of different lengths rather than compute on its pads.</param>
    /// <param name="rows">the rows to run (a chunk of the current input); null: the whole current input.</param>
    public StagePass(ExperimentState state, string command, bool masked = false, ExperimentInput? rows = null)
    {
        Model = state.RequireModel().Model;
        Input = rows ?? state.RequireInput(command);
        if (Input.Mask is not null && !masked)
            throw new NotSupportedException($"'{command}' does not take texts of different token lengths yet (they "
                + $"would be padded, and '{command}' would count the pads): "
                + "give texts of equal length, or one text per input");
        Tokens = Input.ToTensor(Model.Device);
        AttentionMask = Input.MaskTensor(Model.Device);
        flags = FlagsOn(Model.Config, state.Flags);
        hooks = ModelEdits.Attach(Model, state);
    }

    public HookedTransformer Model { get; }
    public ExperimentInput Input { get; }
    public Tensor Tokens { get; }

    /// <summary>The input's attention mask [batch, pos], or null when no row is padded.</summary>
    public Tensor? AttentionMask { get; }

    public void Dispose() { hooks.Dispose(); flags(); Tokens.Dispose(); AttentionMask?.Dispose(); }

    readonly Action flags;

    /// <summary>Turns the `use` flags on in the model's config for this pass; returns what restores them.</summary>
    static Action FlagsOn(HookedTransformerConfig cfg, IEnumerable<ModelFlag> on)
    {
        var saved = (cfg.UseAttnResult, cfg.UseSplitQkvInput, cfg.UseAttnIn, cfg.UseHookMlpIn);
        foreach (var flag in on)
            switch (flag)
            {
                case ModelFlag.AttnResult: cfg.UseAttnResult = true; break;
                case ModelFlag.SplitQkvInput: cfg.UseSplitQkvInput = true; break;
                case ModelFlag.AttnIn: cfg.UseAttnIn = true; break;
                case ModelFlag.HookMlpIn: cfg.UseHookMlpIn = true; break;
            }
        return () => (cfg.UseAttnResult, cfg.UseSplitQkvInput, cfg.UseAttnIn, cfg.UseHookMlpIn) = saved;
    }
}
