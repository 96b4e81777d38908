namespace Lens.Dsl;

/// <summary>A change to the model's computation: what is done (the subtype), where (its target) and how.</summary>
public abstract record Intervention
{
    private protected Intervention() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>`ablate TARGET [zero|mean|resample]`.</summary>
public sealed record Ablation(InterventionTarget Target, AblationMode Mode) : Intervention;

/// <summary>Where an intervention acts.</summary>
public abstract record InterventionTarget
{
    private protected InterventionTarget() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>Attention heads or whole layers, as a selection (`L1H4`, `L1`, `ind`, `L1H* except L1H4`).</summary>
public sealed record HeadsTarget(Selection Selection) : InterventionTarget;

/// <summary>`mlp L0`: the MLP output of a layer.</summary>
public sealed record MlpTarget(int Layer) : InterventionTarget
{
    private Valid InRange { get; } = Ranges.LayerIndex.Of(Layer);
}

/// <summary>`attn L1`: the attention output of a layer.</summary>
public sealed record AttnTarget(int Layer) : InterventionTarget
{
    private Valid InRange { get; } = Ranges.LayerIndex.Of(Layer);
}

/// <summary>`neurons mlp L0 N12,N40`: single MLP neurons of a layer.</summary>
public sealed record NeuronsTarget(int Layer, NodeList<int> Neurons) : InterventionTarget
{
    private Valid InRange { get; } = Ranges.LayerIndex.Of(Layer) & Valid.NotEmpty(Neurons, "a neuron list")
        & Neurons.Aggregate(default(Valid), (valid, n) => valid & Ranges.NeuronIndex.Of(n));
}

/// <summary>`feature 12`: one feature of the most recent SAE (`ablate feature 12` sets it to 0 on
/// hook_sae_acts_post).</summary>
public sealed record FeatureTarget(int Feature) : InterventionTarget
{
    private Valid InRange { get; } = Ranges.FeatureIndex.Of(Feature);
}
