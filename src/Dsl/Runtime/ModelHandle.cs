namespace Lens.Dsl.Runtime;

/// <summary>A loaded model with the name it was asked for by, and its weights checksum (computed once, on
/// demand).</summary>
public sealed class ModelHandle(string name, HookedTransformer model)
{
    readonly Lazy<string> checksum = new(() => StateDictChecksum.Sha256(model.StateDict()));

    /// <summary>The reference the experiment (or the command line) gave: a name, hub id or path.</summary>
    public string Name { get; } = name;

    public HookedTransformer Model { get; } = model;

    public HookedTransformerConfig Config => Model.Config;

    /// <summary>sha256 of the state dict (see <see cref="StateDictChecksum"/>).</summary>
    public string WeightsSha256 => checksum.Value;

    public override string ToString() => $"{Name} ({Model})";
}
