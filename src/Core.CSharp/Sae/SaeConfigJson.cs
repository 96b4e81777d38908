using System.Text.Json;

namespace Lens.Sae;

/// <summary>
/// Reads an SAELens <c>cfg.json</c>: the 6.x layout (hook in <c>metadata</c>) and the flat pre-6.0 layout
/// most published SAEs use, converted as SAELens's <c>handle_config_defaulting</c> /
/// <c>handle_pre_6_0_config</c> do (loading/pretrained_sae_loaders.py 201-270). Values Lens cannot run
/// exactly as SAELens does are refused with the field's name.
/// </summary>
public static class SaeConfigJson
{
    public static SaeConfig Read(string path, string? hookOverride = null)
    {
        if (!File.Exists(path)) throw new SaeException($"SAE config not found: {path}");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new SaeException($"{path}: not valid JSON ({e.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new SaeException($"{path}: not a JSON object");
        return Parse(doc.RootElement, path, hookOverride);
    }

    public static SaeConfig Parse(JsonElement root, string where, string? hookOverride = null)
    {
        var fields = root.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        var metadata = fields.TryGetValue("metadata", out var m) && m.ValueKind == JsonValueKind.Object
            ? m.EnumerateObject().ToDictionary(p => p.Name, p => p.Value) : null;
        var version = Str(fields, "sae_lens_version", where)
            ?? (metadata is null ? null : Str(metadata, "sae_lens_version", where));
        return IsSix(version)
            ? FromSix(fields, metadata ?? [], where, hookOverride)
            : FromLegacy(fields, where, hookOverride);
    }

    /// <summary>SAELens compares with Version("6.0.0-rc.0"): any 6.x or later release is the new layout.</summary>
    static bool IsSix(string? version) =>
        version is not null && int.TryParse(version.Split('.', '-')[0], out var major) && major >= 6;

    static SaeConfig FromSix(Dictionary<string, JsonElement> f, Dictionary<string, JsonElement> meta, string where,
        string? hookOverride)
    {
        var arch = Str(f, "architecture", where)
            ?? throw new SaeException($"{where}: no 'architecture' (a SAELens 6 cfg.json names it)");
        RefuseHeadIndex(meta, where);
        return Build(f, arch, k: arch == "topk" ? Int(f, "k", where) ?? 100 : null,
            hook: hookOverride ?? Str(meta, "hook_name", where), reshapeDefault: "none",
            normalize: Str(f, "normalize_activations", where) ?? "none",
            modelName: Str(meta, "model_name", where), prependBos: Bool(meta, "prepend_bos", where), where);
    }

    static SaeConfig FromLegacy(Dictionary<string, JsonElement> f, string where, string? hookOverride)
    {
        string? Renamed(string now, string old) => f.ContainsKey(now) ? Str(f, now, where) : Str(f, old, where);
        var hook = Renamed("hook_name", "hook_point");
        if (f.ContainsKey("hook_point_head_index") || f.ContainsKey("hook_head_index"))
        {
            var head = f.TryGetValue("hook_head_index", out var h) ? h : f["hook_point_head_index"];
            if (head.ValueKind != JsonValueKind.Null)
                throw new SaeException($"{where}: hook_head_index is {head}: single-head SAEs are not supported " +
                    $"(SAELens applies them only in run_evals and its activation store)");
        }
        var arch = Str(f, "architecture", where) ?? "standard";
        var activationFn = Renamed("activation_fn", "activation_fn_str") ?? "relu";
        int? k = null;
        if (activationFn == "topk")
        {
            k = f.TryGetValue("activation_fn_kwargs", out var kw) && kw.ValueKind == JsonValueKind.Object
                && kw.TryGetProperty("k", out var kv) && kv.ValueKind == JsonValueKind.Number
                ? kv.GetInt32()
                : throw new SaeException($"{where}: activation_fn 'topk' without activation_fn_kwargs.k (SAELens " +
                    $"would silently run it as ReLU)");
            arch = "topk";
        }
        else if (activationFn != "relu")
            throw new SaeException($"{where}: activation_fn '{activationFn}' is not supported (SAELens 6 ignores it " +
                $"and applies its architecture's own activation; Lens refuses rather than run a different function)");
        else if (arch == "topk") k = Int(f, "k", where) ?? 100;
        string normalize = "none";
        if (f.TryGetValue("normalize_activations", out var n))
            normalize = n.ValueKind switch
            {
                JsonValueKind.True => "expected_average_only_in",
                JsonValueKind.False or JsonValueKind.Null => "none",
                JsonValueKind.String => n.GetString()!,
                _ => throw new SaeException($"{where}: normalize_activations is {n} (expected a string or a boolean)"),
            };
        return Build(f, arch, k, hookOverride ?? hook,
            reshapeDefault: hook is not null && hook.Contains("hook_z") ? "hook_z" : "none",
            normalize, Str(f, "model_name", where), Bool(f, "prepend_bos", where) ?? true, where);
    }

    static void RefuseHeadIndex(Dictionary<string, JsonElement> meta, string where)
    {
        if (meta.TryGetValue("hook_head_index", out var h) && h.ValueKind != JsonValueKind.Null)
            throw new SaeException($"{where}: metadata.hook_head_index is {h}: single-head SAEs are not supported " +
                $"(SAELens applies them only in run_evals and its activation store)");
    }

    static SaeConfig Build(Dictionary<string, JsonElement> f, string arch, int? k, string? hook, string reshapeDefault,
        string normalize, string? modelName, bool? prependBos, string where)
    {
        if (!SaeConfig.Architectures.Contains(arch))
            throw new SaeException($"{where}: architecture '{arch}' is not supported " +
                $"(supported: {string.Join(", ", SaeConfig.Architectures)})");
        if (!SaeConfig.Normalizations.Contains(normalize))
            throw new SaeException($"{where}: normalize_activations '{normalize}' is not supported " +
                $"(supported: {string.Join(", ", SaeConfig.Normalizations)})");
        var reshape = Str(f, "reshape_activations", where) ?? reshapeDefault;
        if (reshape is not ("none" or "hook_z"))
            throw new SaeException($"{where}: reshape_activations '{reshape}' is not supported (none, hook_z)");
        if (hook is null)
            throw new SaeException($"{where}: no hook_name: say where the SAE attaches (sae load PATH at HOOK)");
        if (reshape == "hook_z" && !hook.EndsWith("_z", StringComparison.Ordinal))
            throw new SaeException($"{where}: reshape_activations 'hook_z' with hook '{hook}' (SAELens allows hook_z " +
                $"reshaping only on a hook ending in _z)");
        var dtype = Str(f, "dtype", where) ?? "float32";
        if (dtype.StartsWith("torch.", StringComparison.Ordinal)) dtype = dtype["torch.".Length..];
        if (dtype is not ("float32" or "float64" or "float16" or "bfloat16"))
            throw new SaeException($"{where}: dtype '{dtype}' is not supported (float32, float64, float16, bfloat16)");
        var dIn = Int(f, "d_in", where) ?? throw new SaeException($"{where}: no d_in");
        var dSae = Int(f, "d_sae", where) ?? throw new SaeException($"{where}: no d_sae");
        if (dIn <= 0 || dSae <= 0) throw new SaeException($"{where}: d_in {dIn} and d_sae {dSae} must be positive");
        if (k is int kk && (kk <= 0 || kk > dSae))
            throw new SaeException($"{where}: k {kk} must be between 1 and d_sae {dSae}");
        return new SaeConfig
        {
            Architecture = arch, DIn = dIn, DSae = dSae, Dtype = dtype,
            ApplyBDecToInput = Bool(f, "apply_b_dec_to_input", where) ?? true,
            NormalizeActivations = normalize, ReshapeActivations = reshape,
            K = k ?? 100,
            RescaleActsByDecoderNorm = arch == "topk" && (Bool(f, "rescale_acts_by_decoder_norm", where) ?? false),
            HookName = hook, ModelName = modelName, PrependBos = prependBos,
        };
    }

    static string? Str(Dictionary<string, JsonElement> f, string key, string where) =>
        !f.TryGetValue(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString()
        : throw new SaeException($"{where}: {key} is {v} (expected a string)");

    static int? Int(Dictionary<string, JsonElement> f, string key, string where) =>
        !f.TryGetValue(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i
        : throw new SaeException($"{where}: {key} is {v} (expected an integer)");

    static bool? Bool(Dictionary<string, JsonElement> f, string key, string where) =>
        !f.TryGetValue(key, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean()
        : throw new SaeException($"{where}: {key} is {v} (expected true or false)");
}
