using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// What a stage that runs the model needs: the model, the current input and its tokens on the model's device,
/// with the experiment's interventions attached until disposed.
/// </summary>
internal sealed class StagePass : IDisposable
{
    readonly IDisposable hooks;

    /// <param name="command">names the statement in the error when there is no input (`score induction needs an input`).</param>
    /// <param name="masked">whether the stage passes <see cref="AttentionMask"/> on; a stage that does not
    /// refuses an input of texts of different lengths rather than compute on its pads.</param>
    public StagePass(ExperimentState state, string command, bool masked = false)
    {
        Model = state.RequireModel().Model;
        Input = state.RequireInput(command);
        if (Input.Mask is not null && !masked)
            throw new NotSupportedException($"'{command}' does not take texts of different token lengths yet (they would be padded, and '{command}' would count the pads): "
                + "give texts of equal length, or one text per input");
        Tokens = Input.ToTensor(Model.Device);
        AttentionMask = Input.MaskTensor(Model.Device);
        hooks = InterventionHooks.Attach(Model, state.Interventions);
    }

    public HookedTransformer Model { get; }
    public ExperimentInput Input { get; }
    public Tensor Tokens { get; }

    /// <summary>The input's attention mask [batch, pos], or null when no row is padded.</summary>
    public Tensor? AttentionMask { get; }

    public void Dispose() { hooks.Dispose(); Tokens.Dispose(); AttentionMask?.Dispose(); }
}
