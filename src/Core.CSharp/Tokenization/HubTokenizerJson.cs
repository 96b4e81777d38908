using System.Text.Json;

namespace Lens.Tokenization;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special);

/// <summary>
/// The parts of a Hugging Face <c>tokenizer.json</c> that the BPE tokenizers here share: the model
/// section (vocab, merges, flags), added tokens, and whether the post-processor puts BOS first.
/// Every problem is reported as a <see cref="TokenizerFileException"/> naming the file.
/// </summary>
internal sealed class HubTokenizerJson
{
    public required string Path { get; init; }
    public required JsonElement Root { get; init; }
    public required JsonElement Model { get; init; }
    public required string ModelType { get; init; }
    public required Dictionary<string, int> Vocab { get; init; }
    public required List<(string Left, string Right)> Merges { get; init; }
    public required List<AddedToken> AddedTokens { get; init; }

    public static HubTokenizerJson Read(string path)
    {
        TokenizerFileException.ThrowIfMissing(path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(path, $"is not valid JSON ({e.Message})", e);
        }
        catch (IOException e)
        {
            throw new TokenizerFileException(path, $"cannot be read ({e.Message})", e);
        }

        return FromDocument(path, doc);
    }

    /// <summary>A tokenizer.json already parsed (or built in memory, as from a tokenizer.model);
    /// <paramref name="path"/> names it in errors.</summary>
    public static HubTokenizerJson FromDocument(string path, JsonDocument doc)
    {
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model)
            || model.ValueKind != JsonValueKind.Object)
            throw new TokenizerFileException(path, "has no \"model\" object; it is not a Hugging Face tokenizer.json.");
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : "(missing)";

        return new HubTokenizerJson
        {
            Path = path,
            Root = root,
            Model = model,
            ModelType = type,
            Vocab = type == "BPE" ? ReadVocab(path, model) : new(),
            Merges = type == "BPE" ? ReadMerges(path, model) : new(),
            AddedTokens = ReadAddedTokens(path, root),
        };
    }

    public TokenizerFileException Malformed(string problem) => new(Path, problem);

    /// <summary>BPE dropout makes Hugging Face's encoding random; a file that sets it is refused.</summary>
    public void RefuseDropout()
    {
        if (Model.TryGetProperty("dropout", out var d) && d.ValueKind == JsonValueKind.Number && d.GetDouble() > 0)
            throw Malformed($"model.dropout is {d.GetDouble()}, which makes Hugging Face's BPE encoding random; Lens " +
                $"does not reproduce it.");
    }

    /// <summary>A section of the root (normalizer, pre_tokenizer, decoder, post_processor), or null when absent or
    /// null.</summary>
    public JsonElement? Section(string name) =>
        Root.TryGetProperty(name, out var s) && s.ValueKind == JsonValueKind.Object ? s : null;

    /// <summary>The section itself and, for a "Sequence", its members (one level deep), with their "type".</summary>
    public IEnumerable<(string Type, JsonElement Element)> Components(string section)
    {
        if (Section(section) is not { } s) yield break;
        string type = StringOf(s, "type") ?? "";
        yield return (type, s);
        foreach (var listName in new[] { "normalizers", "pretokenizers", "decoders", "processors" })
        {
            if (s.TryGetProperty(listName, out var list) && list.ValueKind == JsonValueKind.Array)
                foreach (var member in list.EnumerateArray())
                    if (member.ValueKind == JsonValueKind.Object)
                        yield return (StringOf(member, "type") ?? "", member);
        }
    }

    public bool HasComponent(string section, string type) => Components(section).Any(c => c.Type == type);

    public static string? StringOf(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static bool? BoolOf(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False)
            ? v.GetBoolean()
            : null;

    /// <summary>
    /// Whether the post-processor's single-sequence template starts with a special token, and which:
    /// that is how tokenizer.json says "this tokenizer adds BOS by itself".
    /// </summary>
    public string? TemplateLeadingSpecialToken()
    {
        foreach (var (type, e) in Components("post_processor"))
        {
            if (type != "TemplateProcessing" || !e.TryGetProperty("single", out var single)
                || single.ValueKind != JsonValueKind.Array)
                continue;
            var first = single.EnumerateArray().FirstOrDefault();
            if (first.ValueKind == JsonValueKind.Object && first.TryGetProperty("SpecialToken", out var st)
                && st.ValueKind == JsonValueKind.Object)
                return StringOf(st, "id");
        }
        return null;
    }

    /// <summary>Id of a token by its text: added tokens first, then the model vocabulary.</summary>
    public int? IdOf(string content)
    {
        foreach (var a in AddedTokens) if (a.Content == content) return a.Id;
        return Vocab.TryGetValue(content, out int id) ? id : null;
    }

    static Dictionary<string, int> ReadVocab(string path, JsonElement model)
    {
        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw new TokenizerFileException(path, "model.vocab is missing or not an object.");
        var result = new Dictionary<string, int>();
        foreach (var p in vocab.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new TokenizerFileException(path, $"model.vocab entry \"{p.Name}\" has no valid id.");
            result[p.Name] = id;
        }
        return result;
    }

    static List<(string, string)> ReadMerges(string path, JsonElement model)
    {
        var result = new List<(string, string)>();
        if (!model.TryGetProperty("merges", out var merges) || merges.ValueKind == JsonValueKind.Null)
            return result;
        if (merges.ValueKind != JsonValueKind.Array)
            throw new TokenizerFileException(path, "model.merges is not an array.");
        int index = 0;
        foreach (var m in merges.EnumerateArray())
        {
            // Older files write a merge as "left right"; newer ones as ["left", "right"].
            if (m.ValueKind == JsonValueKind.String)
            {
                string s = m.GetString()!;
                int space = s.IndexOf(' ');
                if (space <= 0 || space == s.Length - 1 || s.IndexOf(' ', space + 1) >= 0)
                    throw new TokenizerFileException(path,
                        $"model.merges[{index}] \"{s}\" is not two pieces separated by one space.");
                result.Add((s[..space], s[(space + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            {
                result.Add((m[0].GetString()!, m[1].GetString()!));
            }
            else
            {
                throw new TokenizerFileException(path, $"model.merges[{index}] is neither \"a b\" nor [\"a\", \"b\"].");
            }
            index++;
        }
        return result;
    }

    static List<AddedToken> ReadAddedTokens(string path, JsonElement root)
    {
        var result = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var list) || list.ValueKind == JsonValueKind.Null)
            return result;
        if (list.ValueKind != JsonValueKind.Array)
            throw new TokenizerFileException(path, "added_tokens is not an array.");
        int index = 0;
        foreach (var a in list.EnumerateArray())
        {
            if (a.ValueKind != JsonValueKind.Object
                || !a.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.Number
                || !id.TryGetInt32(out int idValue) || idValue < 0
                || StringOf(a, "content") is not { Length: > 0 } content)
                throw new TokenizerFileException(path,
                    $"added_tokens[{index}] needs an \"id\" and a non-empty \"content\".");
            result.Add(new AddedToken(idValue, content, BoolOf(a, "special") ?? false));
            index++;
        }
        return result;
    }
}
