using System.Text.Json;

namespace Lens.Tokenization;

/// <summary>Finds and opens the tokenizer in a checkpoint folder laid out as on the Hugging Face hub (or
/// llama2.c's).</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// Picks the tokenizer from the files present: tokenizer.json (byte-level BPE -> <see cref="Gpt2Tokenizer"/>,
    /// '▁' BPE -> <see cref="SentencePieceBpeTokenizer"/>), else vocab.json + merges.txt (GPT-2 layout), else a
    /// SentencePiece tokenizer.model (converted as Hugging Face converts it, <see cref="SentencePieceModelFile"/>),
    /// else a llama2.c tokenizer.bin / tok*.bin. BOS/EOS/padding then come from tokenizer_config.json,
    /// special_tokens_map.json or config.json, in that order, when they say; as in TransformerLens, BOS and
    /// padding fall back to EOS.
    /// </summary>
    public static ITokenizer FromFolder(string dir) => FromFolderWithJson(dir).Tokenizer;

    /// <summary>As <see cref="FromFolder"/>, with the tokenizer.json it was read from (null for other
    /// layouts).</summary>
    internal static (ITokenizer Tokenizer, HubTokenizerJson? Json) FromFolderWithJson(string dir)
    {
        if (!Directory.Exists(dir))
            throw new TokenizerFileException(dir, "the tokenizer folder does not exist.");

        var (tokenizer, json) = OpenTokenizerFile(dir);
        return (ApplyConfiguration(dir, tokenizer), json);
    }

    static (ITokenizer, HubTokenizerJson?) OpenTokenizerFile(string dir)
    {
        string tokenizerJson = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(tokenizerJson))
        {
            var json = HubTokenizerJson.Read(tokenizerJson);
            if (json.ModelType != "BPE")
                throw json.Malformed(
                    $"model type \"{json.ModelType}\" is not supported (only BPE: byte-level or SentencePiece-style).");
            return (Gpt2Tokenizer.IsByteLevel(json)
                ? Gpt2Tokenizer.FromTokenizerJson(json)
                : SentencePieceBpeTokenizer.FromTokenizerJson(json), json);
        }

        string vocab = Path.Combine(dir, "vocab.json"), merges = Path.Combine(dir, "merges.txt");
        if (File.Exists(vocab) || File.Exists(merges))
            return (Gpt2Tokenizer.FromFiles(vocab, merges), null);

        // Only a SentencePiece model: converted as Hugging Face converts it when no tokenizer.json exists.
        string spModel = Path.Combine(dir, "tokenizer.model");
        if (File.Exists(spModel))
        {
            var json = SentencePieceModelFile.Read(spModel, ReadJsonObject(Path.Combine(dir, "tokenizer_config.json")));
            return (SentencePieceBpeTokenizer.FromTokenizerJson(json), json);
        }

        string[] llama2c = File.Exists(Path.Combine(dir, "tokenizer.bin"))
            ? new[] { Path.Combine(dir, "tokenizer.bin") }
            : Directory.GetFiles(dir, "tok*.bin");
        if (llama2c.Length == 1)
            return (Llama2cTokenizer.Load(llama2c[0]), null);
        if (llama2c.Length > 1)
            throw new TokenizerFileException(dir,
                $"holds several llama2.c tokenizers ({string.Join(", ", llama2c.Select(Path.GetFileName))}); open " +
                $"one with Llama2cTokenizer.Load.");

        throw new TokenizerFileException(dir,
            "holds no tokenizer: expected tokenizer.json, vocab.json + merges.txt, a SentencePiece tokenizer.model, " +
            "or a llama2.c tokenizer.bin / tok*.bin.");
    }

    static ITokenizer ApplyConfiguration(string dir, ITokenizer tokenizer)
    {
        var sources = new[] { "tokenizer_config.json", "special_tokens_map.json", "config.json" }
            .Select(f => (File: Path.Combine(dir, f), Root: ReadJsonObject(Path.Combine(dir, f))))
            .Where(s => s.Root is not null)
            .ToList();
        if (sources.Count == 0) return tokenizer;

        int? bos = Resolve("bos", tokenizer.BosTokenId);
        int? eos = Resolve("eos", tokenizer.EosTokenId);
        int? pad = Resolve("pad", tokenizer.PadTokenId) ?? eos;
        bos ??= eos;
        bool prependsBos = tokenizer.PrependsBosByItself;
        var tokenizerConfig = sources.FirstOrDefault(s => Path.GetFileName(s.File) == "tokenizer_config.json");
        if (tokenizerConfig.Root is { } tc && HubTokenizerJson.BoolOf(tc, "add_bos_token") is { } addBos)
            prependsBos = addBos;

        if (bos == tokenizer.BosTokenId && eos == tokenizer.EosTokenId && pad == tokenizer.PadTokenId
            && prependsBos == tokenizer.PrependsBosByItself)
            return tokenizer;
        return new ConfiguredTokenizer(tokenizer, bos, eos, pad, prependsBos);

        // The first file that mentions the token decides (a null there means "none"); otherwise the tokenizer's own.
        int? Resolve(string kind, int? own)
        {
            foreach (var (file, root) in sources)
            {
                var r = root!.Value;
                bool isModelConfig = Path.GetFileName(file) == "config.json";
                string key = isModelConfig ? kind + "_token_id" : kind + "_token";
                if (!r.TryGetProperty(key, out var value)) continue;
                return isModelConfig
                    ? IdFromModelConfig(file, key, value)
                    : IdFromTokenText(file, key, value, tokenizer);
            }
            return own;
        }
    }

    static int? IdFromTokenText(string file, string key, JsonElement value, ITokenizer tokenizer)
    {
        string? content = value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object => HubTokenizerJson.StringOf(value, "content"),
            _ => throw new TokenizerFileException(file,
                $"\"{key}\" is neither a string, an object with \"content\", nor null."),
        };
        if (content is null) return null;
        return tokenizer.TokenToId(content)
            ?? throw new TokenizerFileException(file,
            $"\"{key}\" is \"{content}\", which is not a token of {tokenizer.Name}.");
    }

    static int? IdFromModelConfig(string file, string key, JsonElement value)
    {
        // Some configs give a list of EOS ids; the first is the one used for padding and stopping.
        if (value.ValueKind == JsonValueKind.Array) value = value.EnumerateArray().FirstOrDefault();
        return value.ValueKind switch
        {
            JsonValueKind.Null or JsonValueKind.Undefined => null,
            JsonValueKind.Number when value.TryGetInt32(out int id) && id >= 0 => id,
            _ => throw new TokenizerFileException(file, $"\"{key}\" is not a token id."),
        };
    }

    internal static JsonElement? ReadJsonObject(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object
                ? doc.RootElement.Clone()
                : throw new TokenizerFileException(path, "is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(path, $"is not valid JSON ({e.Message})", e);
        }
    }
}
