using System.Text.RegularExpressions;

namespace Lens;

/// <summary>TransformerLens's <c>utils.get_act_name</c>: shorthand → full hook name.</summary>
public static partial class ActName
{
    static readonly Dictionary<string, string> LayerTypeAlias = new()
    { ["a"] = "attn", ["m"] = "mlp", ["b"] = "", ["block"] = "", ["blocks"] = "", ["attention"] = "attn" };
    static readonly Dictionary<string, string> NameAlias = new()
    {
        ["attn"] = "pattern", ["attn_logits"] = "attn_scores", ["key"] = "k", ["query"] = "q", ["value"] = "v",
        ["mlp_pre"] = "pre", ["mlp_mid"] = "mid", ["mlp_post"] = "post",
    };
    static readonly HashSet<string> AttnNames =
        ["k", "v", "q", "z", "rot_k", "rot_q", "result", "pattern", "attn_scores"];
    static readonly HashSet<string> MlpNames = ["pre", "post", "mid", "pre_linear"];

    /// <summary>Whether a name is already a full hook name, as get_act_name tells: a dot, or a hook_ start.</summary>
    public static bool IsFullName(string name) =>
        name.Contains('.') || name.StartsWith("hook_", StringComparison.Ordinal);

    [GeneratedRegex(@"^([a-z]+)(\d+)([a-z]?.*)$")]
    private static partial Regex Compact();

    /// <summary>
    /// <c>Get("pattern", 1)</c> = blocks.1.attn.hook_pattern; <c>Get("scale", 0, "ln1")</c> =
    /// blocks.0.ln1.hook_scale; <c>Get("resid_pre", 3)</c> = blocks.3.hook_resid_pre; <c>Get("embed")</c> =
    /// hook_embed; <c>Get("scale")</c> = ln_final.hook_scale; <c>Get("pattern1")</c> and <c>Get("z2a")</c> also work.
    /// A full name is returned as is.
    /// </summary>
    public static string Get(string name, int? layer = null, string? layerType = null)
    {
        if (IsFullName(name) && layer is null && layerType is null) return name;
        var m = Compact().Match(name);
        if (m.Success && layer is null)
        {
            name = m.Groups[1].Value;
            layer = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            layerType = m.Groups[3].Value;
        }
        if (NameAlias.TryGetValue(name, out var alias)) name = alias;
        var full = layer is int l ? $"blocks.{l}." : "";
        if (AttnNames.Contains(name)) layerType = "attn";
        else if (MlpNames.Contains(name)) layerType = "mlp";
        else if (layerType is not null && LayerTypeAlias.TryGetValue(layerType, out var lt)) layerType = lt;
        if (!string.IsNullOrEmpty(layerType)) full += layerType + ".";
        full += "hook_" + name;
        if ((name == "scale" || name == "normalized") && layer is null) full = "ln_final." + full;
        return full;
    }
}
