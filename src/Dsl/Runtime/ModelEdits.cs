using Lens.Sae;

namespace Lens.Dsl.Runtime;

/// <summary>
/// Everything an experiment has changed in the model, attached for one scope: the SAEs spliced in (first,
/// so that their hook points exist), the ablations, then the feature edits on the SAEs' hook_sae_acts_post.
/// </summary>
internal static class ModelEdits
{
    public static IDisposable Attach(HookedTransformer model, ExperimentState state)
    {
        var handles = new List<IDisposable>();
        try
        {
            foreach (var sae in state.Saes) handles.Add(model.AttachSae(sae.Sae, sae.ErrorTerm));
            handles.Add(InterventionHooks.Attach(model, state.Interventions));
            if (state.FeatureEdits.Count > 0) handles.Add(model.Hooks(state.FeatureEdits.Select(e => e.Hook).ToList()));
        }
        catch
        {
            Detach(handles);
            throw;
        }
        return new Scope(handles);
    }

    static void Detach(List<IDisposable> handles)
    {
        for (int i = handles.Count - 1; i >= 0; i--) handles[i].Dispose();
        handles.Clear();
    }

    sealed class Scope(List<IDisposable> handles) : IDisposable
    {
        public void Dispose() => Detach(handles);
    }
}
