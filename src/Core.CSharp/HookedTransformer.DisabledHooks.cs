namespace Lens;

/// <summary>
/// Hook points that exist in every model (as in TransformerLens) but fire only when a config flag is on:
/// hooking one with its flag off would silently never run, so it is refused, naming the flag.
/// </summary>
public sealed partial class HookedTransformer
{
    /// <summary>The config flag (TransformerLens's name) a hook point needs and that is off, or null when it
    /// fires.</summary>
    public string? DisablingFlag(string fullName)
    {
        var leaf = fullName[(fullName.LastIndexOf('.') + 1)..];
        return leaf switch
        {
            "hook_q_input" or "hook_k_input" or "hook_v_input" when !Config.UseSplitQkvInput => "use_split_qkv_input",
            "hook_attn_in" when !Config.UseAttnIn => "use_attn_in",
            "hook_result" when !Config.UseAttnResult => "use_attn_result",
            "hook_mlp_in" when !Config.UseHookMlpIn => "use_hook_mlp_in",
            "hook_tokens" when !Config.UseHookTokens => "use_hook_tokens",
            _ => null,
        };
    }

    /// <summary>The message for a hook point whose flag is off.</summary>
    public static string DisabledHookMessage(string fullName, string flag) =>
        $"hook point '{fullName}' fires only with {flag} = true, which is off in this model's config: "
            + HowToTurnOn(flag);

    static string HowToTurnOn(string flag) => flag == "use_hook_tokens"
        ? "set use_hook_tokens: true in the model's config.json (the hook point is made when the model is built)"
        : $"turn it on (C#/F#: model.Config.{FlagProperty(flag)} = true; experiment: `use {flag["use_".Length..]}`)";

    static string FlagProperty(string flag) => flag switch
    {
        "use_split_qkv_input" => "UseSplitQkvInput",
        "use_attn_in" => "UseAttnIn",
        "use_attn_result" => "UseAttnResult",
        "use_hook_mlp_in" => "UseHookMlpIn",
        _ => "UseHookTokens",
    };

    /// <summary>The hook point of a name, refused when its flag is off.</summary>
    HookPoint EnabledHook(string name)
    {
        if (ActName.Get(name) == "hook_tokens" && !Config.UseHookTokens)
            throw new ArgumentException(DisabledHookMessage("hook_tokens", "use_hook_tokens"));
        var hook = Hook(name);
        if (DisablingFlag(hook.Name) is string flag) throw new ArgumentException(DisabledHookMessage(hook.Name, flag));
        return hook;
    }

    /// <summary>
    /// Refuses a names filter that selects hook points only the config switches off (and, for globs made
    /// by <see cref="NamesFilter"/>, any one pattern that does); a filter that also selects hook points
    /// that fire is fine: the switched-off ones just record nothing, as in TransformerLens.
    /// </summary>
    void RefuseDisabledOnly(Func<string, bool> filter)
    {
        IEnumerable<(string? Pattern, Func<string, bool> Matches)> checks = filter.Target is HookNamePatterns patterns
            ? patterns.Patterns.Select(p => ((string?)p.Pattern, p.Matches))
            : [(null, filter)];
        foreach (var (pattern, matches) in checks)
        {
            var selected = _hookDict.Keys.Where(matches).ToList();
            if (selected.Count == 0 || selected.Any(n => DisablingFlag(n) is null)) continue;
            var flag = DisablingFlag(selected[0])!;
            throw new ArgumentException((pattern is null ? "the names filter" : $"'{pattern}'")
                + $" selects only hook points that fire with {flag} = true, which is off in this model's config "
                + $"({string.Join(", ", selected.Take(3))}{(selected.Count > 3 ? ", …" : "")}): "
                + HowToTurnOn(flag));
        }
    }
}
