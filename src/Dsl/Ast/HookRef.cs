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

    /// <summary>Whether a name is written as a full hook name: it contains a dot or starts with `hook_`.</summary>
    internal static bool IsFullName(string name) =>
        name.Contains('.') || name.StartsWith("hook_", StringComparison.Ordinal);
}

/// <summary>A full hook name: contains a dot or starts with `hook_`.</summary>
public sealed record FullHookName(string Name) : HookRef
{
    private Valid WellFormed { get; } = Valid.Require(IsFullName(Name) && Tokens.DottedNameRegex().IsMatch(Name),
        $"'{Name}' is not a full hook name (names joined by dots, or starting with hook_)");

    public override string FullName => Name;
}

/// <summary>Shorthand `NAME LAYER [LAYER_TYPE]`, expanded as TransformerLens's utils.get_act_name does.</summary>
public sealed record HookShorthand(string Name, int Layer, string? LayerType) : HookRef
{
    private Valid InRange { get; } = Ranges.LayerIndex.Of(Layer)
        & Valid.Require(Keywords.IsIdentifier(Name) && !IsFullName(Name), $"'{Name}' is not a hook shorthand name")
        & Valid.Require(LayerType is null || Keywords.IsIdentifier(LayerType), $"'{LayerType}' is not a layer type");

    private static readonly Dictionary<string, string> NameAliases = new()
    {
        ["attn"] = "pattern", ["attn_logits"] = "attn_scores", ["key"] = "k", ["query"] = "q", ["value"] = "v",
        ["mlp_pre"] = "pre", ["mlp_mid"] = "mid", ["mlp_post"] = "post",
    };

    private static readonly Dictionary<string, string> LayerTypeAliases = new()
    {
        ["a"] = "attn", ["m"] = "mlp", ["b"] = "", ["block"] = "", ["blocks"] = "", ["attention"] = "attn",
    };

    private static readonly HashSet<string> AttentionNames =
        ["k", "v", "q", "z", "rot_k", "rot_q", "result", "pattern", "attn_scores"];

    private static readonly HashSet<string> MlpNames = ["pre", "post", "mid", "pre_linear"];

    public override string FullName
    {
        get
        {
            var name = NameAliases.GetValueOrDefault(Name, Name);
            var layerType = AttentionNames.Contains(name) ? "attn"
                : MlpNames.Contains(name) ? "mlp"
                : LayerType is not null && LayerTypeAliases.TryGetValue(LayerType, out var alias) ? alias
                : LayerType;
            return $"blocks.{Layer}." + (string.IsNullOrEmpty(layerType) ? "" : layerType + ".") + "hook_" + name;
        }
    }
}
