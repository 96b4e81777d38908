using System.Text.Json;

namespace Lens.Tokenization;

/// <summary>
/// A checkpoint's tokenizer as Hugging Face's tokenizer applies it to one text: the ids with or without
/// special tokens (<c>add_special_tokens</c>), the pieces (<c>convert_ids_to_tokens</c>), and decoding
/// with <c>skip_special_tokens</c> and <c>clean_up_tokenization_spaces</c>. Which special tokens go
/// around the text is what tokenizer.json's post-processor says, except where tokenizer_config.json sets
/// add_bos_token / add_eos_token for a Llama or Gemma tokenizer, which Hugging Face turns into the template
/// (BOS first when add_bos_token, EOS last when add_eos_token).
/// </summary>
public sealed class CheckpointTokenizer
{
    static readonly string[] TemplateFromFlags =
        ["LlamaTokenizer", "LlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast", "CodeLlamaTokenizer",
            "CodeLlamaTokenizerFast"];

    readonly IHubPieces _pieces;
    readonly int[] _prefix, _suffix;
    readonly string? _cannotAddSpecial;

    CheckpointTokenizer(ITokenizer tokenizer, IHubPieces pieces, int[] prefix, int[] suffix, string? cannotAddSpecial,
        bool cleanUp)
    {
        Tokenizer = tokenizer;
        _pieces = pieces;
        _prefix = prefix;
        _suffix = suffix;
        _cannotAddSpecial = cannotAddSpecial;
        CleanUpTokenizationSpaces = cleanUp;
    }

    /// <summary>The tokenizer as the model uses it (no special tokens added by Encode).</summary>
    public ITokenizer Tokenizer { get; }

    /// <summary>tokenizer_config.json's clean_up_tokenization_spaces (false when it does not say, as current Hugging
    /// Face).</summary>
    public bool CleanUpTokenizationSpaces { get; }

    /// <summary>Reads tokenizer.json (or vocab.json + merges.txt) and tokenizer_config.json from a folder.</summary>
    public static CheckpointTokenizer FromFolder(string dir)
    {
        var (tokenizer, json) = TokenizerLoader.FromFolderWithJson(dir);
        var inner = tokenizer is ConfiguredTokenizer c ? c.Inner : tokenizer;
        if (inner is not IHubPieces pieces)
            throw new TokenizerFileException(dir,
                $"holds a {inner.GetType().Name}, not a Hugging Face tokenizer (tokenizer.json, or vocab.json + " +
                $"merges.txt).");

        string configPath = Path.Combine(dir, "tokenizer_config.json");
        var config = TokenizerLoader.ReadJsonObject(configPath);
        bool cleanUp = config is { } cfg && HubTokenizerJson.BoolOf(cfg, "clean_up_tokenization_spaces") == true;

        int[] prefix = [], suffix = [];
        string? cannot = null;
        if (json is not null)
            (prefix, suffix, cannot) = Template(json);
        if (config is { } tc && HubTokenizerJson.StringOf(tc, "tokenizer_class") is { } cls
            && TemplateFromFlags.Contains(cls)
            && (HubTokenizerJson.BoolOf(tc, "add_bos_token") is not null
            || HubTokenizerJson.BoolOf(tc, "add_eos_token") is not null))
        {
            bool addBos = HubTokenizerJson.BoolOf(tc, "add_bos_token") ?? true,
                addEos = HubTokenizerJson.BoolOf(tc, "add_eos_token") ?? false;
            prefix = addBos ? [TokenOf(tc, "bos_token")] : [];
            suffix = addEos ? [TokenOf(tc, "eos_token")] : [];
            cannot = null;
        }
        return new CheckpointTokenizer(tokenizer, pieces, prefix, suffix, cannot, cleanUp);

        int TokenOf(JsonElement tc, string key)
        {
            string? content = tc.TryGetProperty(key, out var v) ? v.ValueKind switch
            {
                JsonValueKind.String => v.GetString(),
                JsonValueKind.Object => HubTokenizerJson.StringOf(v, "content"),
                _ => null,
            } : null;
            if (content is null)
                throw new TokenizerFileException(configPath,
                    $"asks for {key} to be added (add_{key[..3]}_token) but names no {key}.");
            return tokenizer.TokenToId(content)
                ?? throw new TokenizerFileException(configPath,
                $"{key} \"{content}\" is not a token of the tokenizer.");
        }
    }

    /// <summary>The special-token ids a post-processor puts before and after a single text.</summary>
    static (int[] Prefix, int[] Suffix, string? CannotAdd) Template(HubTokenizerJson json)
    {
        int[] prefix = [], suffix = [];
        foreach (var (type, e) in json.Components("post_processor"))
        {
            switch (type)
            {
                case "Sequence" or "ByteLevel":
                    continue;   // ByteLevel only trims offsets
                case "TemplateProcessing":
                    var before = new List<int>();
                    var after = new List<int>();
                    bool seenText = false;
                    if (!e.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array)
                        throw json.Malformed("post_processor TemplateProcessing has no \"single\" template.");
                    foreach (var item in single.EnumerateArray())
                    {
                        if (item.TryGetProperty("Sequence", out _)) { seenText = true; continue; }
                        if (!item.TryGetProperty("SpecialToken", out var st)
                            || HubTokenizerJson.StringOf(st, "id") is not { } name
                            || !e.TryGetProperty("special_tokens", out var specials)
                            || !specials.TryGetProperty(name, out var special)
                            || !special.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                            throw json.Malformed("post_processor TemplateProcessing's single template names a " +
                                "special token that its special_tokens do not give ids for.");
                        (seenText ? after : before).AddRange(ids.EnumerateArray().Select(i => i.GetInt32()));
                    }
                    prefix = [.. prefix, .. before];
                    suffix = [.. suffix, .. after];
                    continue;
                default:
                    return ([], [],
                        $"{json.Path}: post_processor \"{type}\" is not supported, so Lens cannot add special tokens " +
                        $"as Hugging Face does (tokenize without them).");
            }
        }
        return (prefix, suffix, null);
    }

    /// <summary>The ids of a text; with <paramref name="addSpecialTokens"/>, the special tokens Hugging Face adds
    /// around it.</summary>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = Tokenizer.Encode(text);
        if (!addSpecialTokens) return [.. ids];
        if (_cannotAddSpecial is not null) throw new InvalidOperationException(_cannotAddSpecial);
        return [.. _prefix, .. ids, .. _suffix];
    }

    /// <summary>Hugging Face's convert_ids_to_tokens.</summary>
    public string[] Pieces(IEnumerable<int> ids) => ids.Select(_pieces.Piece).ToArray();

    /// <summary>Hugging Face's decode: special tokens kept unless skipped, and clean-up as tokenizer_config.json says
    /// unless told.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false, bool? cleanUpTokenizationSpaces = null)
    {
        var kept = skipSpecialTokens ? ids.Where(id => !_pieces.IsSpecial(id)) : ids;
        string text = Tokenizer.Decode(kept);
        return cleanUpTokenizationSpaces ?? CleanUpTokenizationSpaces ? CleanUp(text) : text;
    }

    /// <summary>Hugging Face's clean_up_tokenization: no space before punctuation and English contractions.</summary>
    public static string CleanUp(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}
