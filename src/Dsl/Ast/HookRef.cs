namespace Lens.Dsl;

/// <summary>
/// A hook point of the model, written in full (`blocks.1.attn.hook_pattern`, `hook_embed`) or in
/// TransformerLens shorthand (`pattern 1`, `resid_pre 0`, `scale 0 ln1`).
/// </summary>
public abstract record HookRef
{
    private protected HookRef() { }

    /// <summary>The full hook name the reference stands for (whether the model has it is the runtime's
    /// concern).</summary>
    public abstract string FullName { get; }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>A full hook name: contains a dot or starts with `hook_`.</summary>
public sealed record FullHookName(string Name) : HookRef
{
    private Valid WellFormed { get; } =
        Valid.Require(ActName.IsFullName(Name) && Tokens.DottedNameRegex().IsMatch(Name),
            $"'{Name}' is not a full hook name (names joined by dots, or starting with hook_)");

    public override string FullName => Name;
}

/// <summary>Shorthand `NAME LAYER [LAYER_TYPE]`, expanded as TransformerLens's utils.get_act_name does.</summary>
public sealed record HookShorthand(string Name, int Layer, string? LayerType) : HookRef
{
    private Valid InRange { get; } = Ranges.LayerIndex.Of(Layer)
        & Valid.Require(Keywords.IsIdentifier(Name) && !ActName.IsFullName(Name),
            $"'{Name}' is not a hook shorthand name")
        & Valid.Require(LayerType is null || Keywords.IsIdentifier(LayerType), $"'{LayerType}' is not a layer type");

    public override string FullName => ActName.Get(Name, Layer, LayerType);
}
