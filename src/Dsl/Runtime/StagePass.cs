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
    public StagePass(ExperimentState state, string command)
    {
        Model = state.RequireModel().Model;
        Input = state.RequireInput(command);
        Tokens = Input.ToTensor(Model.Device);
        hooks = InterventionHooks.Attach(Model, state.Interventions);
    }

    public HookedTransformer Model { get; }
    public ExperimentInput Input { get; }
    public Tensor Tokens { get; }

    public void Dispose() { hooks.Dispose(); Tokens.Dispose(); }
}
