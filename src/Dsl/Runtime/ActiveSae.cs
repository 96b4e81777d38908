using Lens.Sae;

namespace Lens.Dsl.Runtime;

/// <summary>An SAE spliced in by `sae load` (the environment owns it), with or without the error term, and the
/// statement as text.</summary>
public sealed record ActiveSae(string Text, SparseAutoencoder Sae, bool ErrorTerm);

/// <summary>
/// A feature edit in force: `ablate feature N` (set to 0) or `steer feature N by|to V`, on one SAE's
/// hook_sae_acts_post at every position.
/// </summary>
public sealed record FeatureEdit(string Text, SparseAutoencoder Sae, int Feature, double Value, bool Set)
{
    public HookSpec Hook =>
        Set ? SaeFeatures.SetFeature(Sae, Feature, Value) : SaeFeatures.AddToFeature(Sae, Feature, Value);
}
