using System.Text.Json;
using System.Text.Json.Nodes;

namespace Lens.Pretrained;

/// <summary>
/// A Hugging Face <c>config.json</c> as <c>AutoConfig</c> would read it: typed getters that fall back
/// to the architecture's default when a key is absent or null (HF writes every attribute, but
/// hand-written configs often omit some). Errors name the file and the key.
/// </summary>
public sealed class HfConfig
{
    readonly JsonObject _json;

    public string Source { get; }

    HfConfig(JsonObject json, string source) { _json = json; Source = source; }

    public static HfConfig Read(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException($"no config.json at {path}");
        return Parse(File.ReadAllText(path), path);
    }

    public static HfConfig Parse(string json, string source = "config.json")
    {
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException e) { throw new CheckpointException($"{source}: not valid JSON ({e.Message})"); }
        if (node is not JsonObject obj) throw new CheckpointException($"{source}: expected a JSON object");
        return new HfConfig(obj, source);
    }

    /// <summary>The model class HF would build: <c>architectures[0]</c>, else derived from <c>model_type</c>.</summary>
    public string? Architecture
    {
        get
        {
            if (_json["architectures"] is JsonArray { Count: > 0 } a && a[0]?.GetValue<string>() is string arch)
                return arch;
            return ModelType switch
            {
                "gpt2" => "GPT2LMHeadModel",
                "gpt_neo" => "GPTNeoForCausalLM",
                "gpt_neox" => "GPTNeoXForCausalLM",
                "llama" => "LlamaForCausalLM",
                "mistral" => "MistralForCausalLM",
                "qwen2" => "Qwen2ForCausalLM",
                "qwen3" => "Qwen3ForCausalLM",
                "gemma" => "GemmaForCausalLM",
                "gemma2" => "Gemma2ForCausalLM",
                "gemma3_text" => "Gemma3ForCausalLM",
                "gemma3" => "Gemma3ForConditionalGeneration",
                "mixtral" => "MixtralForCausalLM",
                "phi3" => "Phi3ForCausalLM",
                "gptj" => "GPTJForCausalLM",
                "opt" => "OPTForCausalLM",
                "olmoe" => "OlmoeForCausalLM",
                _ => null,
            };
        }
    }

    public string? ModelType => _json["model_type"]?.GetValue<string>();

    /// <summary>Whether the key is present with a non-null value.</summary>
    public bool Has(string key) => _json[key] is not null;

    /// <summary>Whether the key is present at all (an explicit null counts: HF distinguishes it from a
    /// default).</summary>
    public bool ContainsKey(string key) => _json.ContainsKey(key);

    public JsonNode? this[string key] => _json[key];

    /// <summary>
    /// The key's value as a <typeparamref name="T"/>, or <paramref name="absent"/>'s when the key is missing or null;
    /// a value of another kind is refused naming the key and the <paramref name="expected"/> kind.
    /// </summary>
    T Read<T>(string key, string expected, Func<T> absent)
    {
        var n = _json[key];
        if (n is null) return absent();
        try { return n.GetValue<T>(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException) { throw Bad(key, expected, n); }
    }

    public int Int(string key, int? fallback = null) => Read(key, "an integer", () => fallback ?? throw Missing(key));

    public int? IntOrNull(string key)
    {
        var n = _json[key];
        return n is null ? null : Int(key);
    }

    public double Double(string key, double? fallback = null) =>
        Read(key, "a number", () => fallback ?? throw Missing(key));

    public double? DoubleOrNull(string key) => _json[key] is null ? null : Double(key);

    public bool Bool(string key, bool fallback) => Read(key, "true or false", () => fallback);

    public string String(string key, string? fallback = null) =>
        Read(key, "a string", () => fallback ?? throw Missing(key));

    public string? StringOrNull(string key) => _json[key] is null ? null : String(key);

    public JsonObject? Object(string key) => _json[key] as JsonObject;

    CheckpointException Missing(string key) => new($"{Source}: needs '{key}'");

    CheckpointException Bad(string key, string expected, JsonNode value) =>
        new($"{Source}: '{key}' should be {expected}, got {value.ToJsonString()}");
}
