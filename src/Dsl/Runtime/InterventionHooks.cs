using Lens.Analysis;
using static TorchSharp.torch;
using LibraryAblation = Lens.Analysis.Ablation;

namespace Lens.Dsl.Runtime;

/// <summary>Attaches the active interventions to a model as the analysis library's ablation hooks, for one
/// scope.</summary>
public static class InterventionHooks
{
    /// <summary>The library ablations the interventions stand for; the tensors they hold are added to
    /// <paramref name="owned"/>.</summary>
    public static IReadOnlyList<LibraryAblation> Ablations(IEnumerable<ActiveIntervention> interventions, Device device,
        List<Tensor> owned)
    {
        var ablations = new List<LibraryAblation>();
        foreach (var intervention in interventions)
        {
            Tensor Reference()
            {
                var tokens =
                    (intervention.Reference
                        ?? throw new InvalidOperationException(
                        $"{intervention.Text} needs an input to take its reference activations from")).ToTensor(device);
                owned.Add(tokens);
                return tokens;
            }
            foreach (var target in intervention.Targets)
                ablations.Add(intervention.Mode switch
                {
                    AblationMode.Zero => LibraryAblation.Zero(target),
                    AblationMode.Mean => LibraryAblation.Mean(target, Reference()),
                    _ => LibraryAblation.Resample(target, Reference(), intervention.Seed),
                });
        }
        return ablations;
    }

    /// <summary>Hooks the model with every intervention until the result is disposed (a no-op when there are
    /// none).</summary>
    public static IDisposable Attach(HookedTransformer model, IReadOnlyCollection<ActiveIntervention> interventions)
    {
        if (interventions.Count == 0) return Nothing.Instance;
        var owned = new List<Tensor>();
        AblationHooks? hooks = null;
        try
        {
            hooks = LibraryAblation.Prepare(model, Ablations(interventions, model.Device, owned));
            var attached = model.Hooks(hooks.Specs);
            return new Scope(attached, hooks, owned);
        }
        catch
        {
            hooks?.Dispose();
            foreach (var t in owned) t.Dispose();
            throw;
        }
    }

    sealed class Scope(IDisposable attached, AblationHooks hooks, List<Tensor> owned) : IDisposable
    {
        public void Dispose()
        {
            attached.Dispose();
            hooks.Dispose();
            foreach (var t in owned) t.Dispose();
            owned.Clear();
        }
    }

    sealed class Nothing : IDisposable
    {
        public static readonly Nothing Instance = new();
        public void Dispose() { }
    }
}
