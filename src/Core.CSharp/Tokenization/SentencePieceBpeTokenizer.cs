using System.Globalization;
using System.Text;

namespace Lens.Tokenization;

/// <summary>
/// SentencePiece-style BPE as Llama-2 and TinyLlama ship it in a Hugging Face tokenizer.json: spaces
/// become '▁', a '▁' is put before the text, pieces merge by merge rank, and characters outside the
/// vocabulary fall back to "&lt;0xXX&gt;" byte pieces. Follows the Hugging Face tokenizers algorithm.
/// </summary>
public sealed class SentencePieceBpeTokenizer : ITokenizer, IHubPieces
{
    const char Metaspace = '\u2581';

    enum Prefix { Never, EverySegment, EverySegmentUnlessPresent, FirstSegmentUnlessPresent }

    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<int, string> _pieceById;
    readonly Dictionary<(int, int), (int Rank, int Merged)> _merges;
    readonly List<AddedToken> _addedLongestFirst;
    readonly AddedTokenMatcher _addedMatcher;
    readonly List<Func<List<string>, List<string>>> _decoders = new();
    readonly Dictionary<int, AddedToken> _addedById;
    readonly int?[] _byteIds = new int?[256];
    readonly bool _byteFallback;
    readonly int? _unkId;
    readonly bool _fuseUnk;
    readonly bool _replaceSpaces;
    readonly Prefix _prefix;
    readonly bool _splitWords;

    SentencePieceBpeTokenizer(HubTokenizerJson json)
    {
        if (json.ModelType != "BPE")
            throw json.Malformed($"model type is \"{json.ModelType}\"; SentencePieceBpeTokenizer needs \"BPE\".");
        if (Gpt2Tokenizer.IsByteLevel(json))
            throw json.Malformed("is a byte-level BPE (ByteLevel pre-tokenizer); use Gpt2Tokenizer.FromTokenizerJson.");
        Name = Path.GetFileName(json.Path);
        _vocab = json.Vocab;
        _pieceById = new Dictionary<int, string>();
        foreach (var (piece, id) in _vocab) _pieceById[id] = piece;

        var model = json.Model;
        _byteFallback = HubTokenizerJson.BoolOf(model, "byte_fallback") ?? false;
        _fuseUnk = HubTokenizerJson.BoolOf(model, "fuse_unk") ?? false;
        if (HubTokenizerJson.StringOf(model, "unk_token") is { } unk)
            _unkId = _vocab.TryGetValue(unk, out int u)
                ? u
                : throw json.Malformed($"unk_token \"{unk}\" is not in the vocabulary.");
        for (int b = 0; b < 256; b++)
            _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : null;
        if (HubTokenizerJson.StringOf(model, "continuing_subword_prefix") is { Length: > 0 }
            || HubTokenizerJson.StringOf(model, "end_of_word_suffix") is { Length: > 0 })
            throw json.Malformed(
                "uses continuing_subword_prefix/end_of_word_suffix, which SentencePiece BPE does not.");

        _merges = new Dictionary<(int, int), (int, int)>();
        for (int rank = 0; rank < json.Merges.Count; rank++)
        {
            var (l, r) = json.Merges[rank];
            if (!_vocab.TryGetValue(l, out int li) || !_vocab.TryGetValue(r, out int ri)
                || !_vocab.TryGetValue(l + r, out int merged))
                throw json.Malformed($"merge {rank} (\"{l}\" \"{r}\") uses a piece that is not in the vocabulary.");
            _merges.TryAdd((li, ri), (rank, merged));
        }

        _addedLongestFirst = json.AddedTokens.OrderByDescending(a => a.Content.Length).ToList();
        _addedById = json.AddedTokens.GroupBy(a => a.Id).ToDictionary(g => g.Key, g => g.First());
        _addedMatcher = new AddedTokenMatcher(json.AddedTokens);
        json.RefuseDropout();
        if (HubTokenizerJson.BoolOf(model, "ignore_merges") == true)
            throw json.Malformed("model.ignore_merges is set, which SentencePiece-style BPE here does not support.");

        _prefix = Prefix.Never;
        foreach (var (type, e) in json.Components("normalizer").Where(c => c.Type != "Sequence"))
        {
            if (type == "Prepend" && HubTokenizerJson.StringOf(e, "prepend") == Metaspace.ToString())
                _prefix = Prefix.EverySegment;
            else if (type == "Replace" && e.TryGetProperty("pattern", out var pattern)
                     && HubTokenizerJson.StringOf(pattern, "String") == " "
                     && HubTokenizerJson.StringOf(e, "content") == Metaspace.ToString())
                _replaceSpaces = true;
            else
                throw json.Malformed(
                    $"normalizer \"{type}\" is not supported here (only Prepend '▁' and Replace ' ' -> '▁').");
        }
        foreach (var (type, e) in json.Components("pre_tokenizer").Where(c => c.Type != "Sequence"))
        {
            // Gemma: Split on " " after a normalizer that has already turned every space into '▁' finds nothing to
            // split.
            if (type == "Split" && _replaceSpaces && e.TryGetProperty("pattern", out var splitOn)
                && HubTokenizerJson.StringOf(splitOn, "String") == " " && HubTokenizerJson.BoolOf(e, "invert") != true)
                continue;
            if (type != "Metaspace")
                throw json.Malformed($"pre-tokenizer \"{type}\" is not supported here (only Metaspace, or Split on " +
                    $"\" \" after a normalizer that replaces spaces).");
            if (HubTokenizerJson.StringOf(e, "replacement") is { } rep && rep != Metaspace.ToString())
                throw json.Malformed($"Metaspace replacement \"{rep}\" is not '▁'.");
            _replaceSpaces = true;
            _splitWords = HubTokenizerJson.BoolOf(e, "split") ?? true;
            string scheme = HubTokenizerJson.StringOf(e, "prepend_scheme")
                            ?? ((HubTokenizerJson.BoolOf(e, "add_prefix_space") ?? true) ? "always" : "never");
            _prefix = scheme switch
            {
                "always" => Prefix.EverySegmentUnlessPresent,
                "first" => Prefix.FirstSegmentUnlessPresent,
                "never" => Prefix.Never,
                _ => throw json.Malformed($"Metaspace prepend_scheme \"{scheme}\" is not known."),
            };
        }

        foreach (var (type, e) in json.Components("decoder").Where(c => c.Type != "Sequence"))
            _decoders.Add(Decoder(json, type, e));
        if (_decoders.Count == 0)
            throw json.Malformed(
                "has no decoder; Lens decodes SentencePiece-style BPE only through the decoders the file names.");

        VocabSize = Math.Max(_pieceById.Keys.DefaultIfEmpty(-1).Max(), _addedById.Keys.DefaultIfEmpty(-1).Max()) + 1;
        string? leading = json.TemplateLeadingSpecialToken();
        PrependsBosByItself = leading is not null;
        // TransformerLens's defaults: BOS and padding fall back to EOS when the tokenizer has none.
        EosTokenId = json.IdOf("</s>");
        BosTokenId = (leading is null ? null : json.IdOf(leading)) ?? json.IdOf("<s>") ?? EosTokenId;
        PadTokenId = EosTokenId;
    }

    /// <summary>Reads a SentencePiece-style BPE tokenizer.json (model "BPE" with '▁' and, usually, byte
    /// fallback).</summary>
    public static SentencePieceBpeTokenizer FromTokenizerJson(string path) => new(HubTokenizerJson.Read(path));

    internal static SentencePieceBpeTokenizer FromTokenizerJson(HubTokenizerJson json) => new(json);

    public string Name { get; }
    public int VocabSize { get; }
    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public bool PrependsBosByItself { get; }

    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        // Added tokens are cut out first, leftmost and then longest, as Hugging Face does.
        foreach (var (start, length, token) in _addedMatcher.Split(text))
        {
            if (token is not null) ids.Add(token.Id);
            else EncodeSegment(text.Substring(start, length), start == 0, ids);
        }
        return ids;
    }

    void EncodeSegment(string segment, bool atTextStart, List<int> ids)
    {
        if (segment.Length == 0) return;
        if (_replaceSpaces) segment = segment.Replace(' ', Metaspace);
        bool hasMark = segment[0] == Metaspace;
        bool prefix = _prefix switch
        {
            Prefix.EverySegment => true,
            Prefix.EverySegmentUnlessPresent => !hasMark,
            Prefix.FirstSegmentUnlessPresent => !hasMark && atTextStart,
            _ => false,
        };
        if (prefix) segment = Metaspace + segment;

        if (!_splitWords)
        {
            ids.AddRange(EncodeWord(segment));
            return;
        }
        // Metaspace's split: every '▁' starts a new word.
        int start = 0;
        for (int j = 1; j <= segment.Length; j++)
        {
            if (j == segment.Length || segment[j] == Metaspace)
            {
                ids.AddRange(EncodeWord(segment[start..j]));
                start = j;
            }
        }
    }

    List<int> EncodeWord(string word)
    {
        var symbols = new List<int>();
        bool previousWasUnknown = false;
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune rune in word.EnumerateRunes())
        {
            if (_vocab.TryGetValue(rune.ToString(), out int id))
            {
                symbols.Add(id);
                previousWasUnknown = false;
                continue;
            }
            int count = rune.EncodeToUtf8(utf8);
            if (_byteFallback && AllHaveBytePieces(utf8[..count]))
            {
                for (int k = 0; k < count; k++) symbols.Add(_byteIds[utf8[k]]!.Value);
                previousWasUnknown = false;
                continue;
            }
            if (_unkId is not { } unk)
                throw new ArgumentException($"Character '{rune}' (U+{rune.Value:X4}) is not in the vocabulary " +
                    $"of {Name}, which has neither byte fallback nor an unknown token.");
            if (!(_fuseUnk && previousWasUnknown)) symbols.Add(unk);
            previousWasUnknown = true;
        }
        return PairMerger.Merge(symbols, (left, right) =>
            _merges.TryGetValue((left, right), out var m) ? (m.Rank, m.Merged) : null);
    }

    bool AllHaveBytePieces(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) if (_byteIds[b] is null) return false;
        return true;
    }

    /// <summary>
    /// Hugging Face's decoding (special tokens kept): the pieces go through the file's decoders in order
    /// (typically '▁' to space, byte pieces to their UTF-8 text with U+FFFD per byte when invalid, fuse,
    /// and strip the one leading space the '▁' prefix made).
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = ids.Select(PieceOf).ToList();
        foreach (var decode in _decoders) tokens = decode(tokens);
        return string.Concat(tokens);
    }

    /// <summary>The piece of an id as tokenizer.json spells it (Hugging Face's convert_ids_to_tokens: "▁cat",
    /// "&lt;0x0A&gt;").</summary>
    public string Piece(int id) => PieceOf(id);

    /// <summary>Whether an id is an added token marked special (dropped by decoding with
    /// skip_special_tokens).</summary>
    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var a) && a.Special;

    /// <summary>One of Hugging Face's decoders as a step on the list of token strings.</summary>
    static Func<List<string>, List<string>> Decoder(HubTokenizerJson json, string type, System.Text.Json.JsonElement e)
    {
        switch (type)
        {
            case "Replace":
                if (!e.TryGetProperty("pattern", out var pattern)
                    || HubTokenizerJson.StringOf(pattern, "String") is not { Length: > 0 } from
                    || HubTokenizerJson.StringOf(e, "content") is not { } to)
                    throw json.Malformed("decoder Replace needs a {\"String\": ...} pattern and a content (a Regex " +
                        "pattern is not supported).");
                return tokens => tokens.Select(t => t.Replace(from, to, StringComparison.Ordinal)).ToList();
            case "ByteFallback":
                return FuseBytePieces;
            case "Fuse":
                return tokens => [string.Concat(tokens)];
            case "Strip":
                string content = HubTokenizerJson.StringOf(e, "content") ?? " ";
                int start = e.TryGetProperty("start", out var st) ? st.GetInt32() : 0,
                    stop = e.TryGetProperty("stop", out var sp) ? sp.GetInt32() : 0;
                if (content.Length != 1)
                    throw json.Malformed($"decoder Strip content \"{content}\" is not one character.");
                return tokens => tokens.Select(t => Strip(t, content[0], start, stop)).ToList();
            case "Metaspace":
                string replacement = HubTokenizerJson.StringOf(e, "replacement") ?? Metaspace.ToString();
                string scheme = HubTokenizerJson.StringOf(e, "prepend_scheme")
                                ?? ((HubTokenizerJson.BoolOf(e, "add_prefix_space") ?? true) ? "always" : "never");
                return tokens => tokens.Select((t, i) =>
                {
                    t = t.Replace(replacement, " ", StringComparison.Ordinal);
                    return i == 0 && scheme != "never" && t.StartsWith(' ') ? t[1..] : t;
                }).ToList();
            default:
                throw json.Malformed($"decoder \"{type}\" is not supported for SentencePiece-style BPE (only " +
                    $"Replace, ByteFallback, Fuse, Strip, Metaspace).");
        }
    }

    /// <summary>ByteFallback: each run of "&lt;0xXX&gt;" pieces becomes its UTF-8 text, or one U+FFFD per byte when
    /// invalid.</summary>
    static List<string> FuseBytePieces(List<string> tokens)
    {
        var result = new List<string>();
        var pending = new List<byte>();
        var strictUtf8 = new UTF8Encoding(false, true);
        void Flush()
        {
            if (pending.Count == 0) return;
            try { result.Add(strictUtf8.GetString(pending.ToArray())); }
            catch (DecoderFallbackException) { result.Add(new string('\uFFFD', pending.Count)); }
            pending.Clear();
        }
        foreach (var t in tokens)
        {
            if (TryParseBytePiece(t, out byte b)) { pending.Add(b); continue; }
            Flush();
            result.Add(t);
        }
        Flush();
        return result;
    }

    static string Strip(string token, char c, int start, int stop)
    {
        int from = 0, to = token.Length;
        while (from < to && from < start && token[from] == c) from++;
        while (to > from && token.Length - to < stop && token[to - 1] == c) to--;
        return token[from..to];
    }

    /// <summary>The piece with '▁' shown as a space (" cat"); byte pieces stay "&lt;0xXX&gt;".</summary>
    public string IdToToken(int id) => PieceOf(id).Replace(Metaspace, ' ');

    public int? TokenToId(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        foreach (var a in _addedLongestFirst) if (a.Content == piece) return a.Id;
        return _vocab.TryGetValue(piece.Replace(' ', Metaspace), out int id) ? id : null;
    }

    string PieceOf(int id) =>
        _addedById.TryGetValue(id, out var added) ? added.Content
        : _pieceById.TryGetValue(id, out var piece) ? piece
        : throw new ArgumentOutOfRangeException(nameof(id), id,
            $"Token id {id} is not in the vocabulary of {Name} (size {VocabSize}).");

    static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture,
            out value);
    }
}
