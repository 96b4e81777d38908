using System.Globalization;
using System.Text;

namespace Lens.Tokenization;

/// <summary>
/// SentencePiece-style BPE as Llama-2 and TinyLlama ship it in a Hugging Face tokenizer.json: spaces
/// become '▁', a '▁' is put before the text, pieces merge by merge rank, and characters outside the
/// vocabulary fall back to "&lt;0xXX&gt;" byte pieces. Follows the Hugging Face tokenizers algorithm.
/// </summary>
public sealed class SentencePieceBpeTokenizer : ITokenizer
{
    const char Metaspace = '\u2581';

    enum Prefix { Never, EverySegment, EverySegmentUnlessPresent, FirstSegmentUnlessPresent }

    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<int, string> _pieceById;
    readonly Dictionary<(int, int), (int Rank, int Merged)> _merges;
    readonly List<AddedToken> _addedLongestFirst;
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
            _unkId = _vocab.TryGetValue(unk, out int u) ? u : throw json.Malformed($"unk_token \"{unk}\" is not in the vocabulary.");
        for (int b = 0; b < 256; b++)
            _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : null;
        if (HubTokenizerJson.StringOf(model, "continuing_subword_prefix") is { Length: > 0 }
            || HubTokenizerJson.StringOf(model, "end_of_word_suffix") is { Length: > 0 })
            throw json.Malformed("uses continuing_subword_prefix/end_of_word_suffix, which SentencePiece BPE does not.");

        _merges = new Dictionary<(int, int), (int, int)>();
        for (int rank = 0; rank < json.Merges.Count; rank++)
        {
            var (l, r) = json.Merges[rank];
            if (!_vocab.TryGetValue(l, out int li) || !_vocab.TryGetValue(r, out int ri) || !_vocab.TryGetValue(l + r, out int merged))
                throw json.Malformed($"merge {rank} (\"{l}\" \"{r}\") uses a piece that is not in the vocabulary.");
            _merges.TryAdd((li, ri), (rank, merged));
        }

        _addedLongestFirst = json.AddedTokens.OrderByDescending(a => a.Content.Length).ToList();
        _addedById = json.AddedTokens.GroupBy(a => a.Id).ToDictionary(g => g.Key, g => g.First());

        _prefix = Prefix.Never;
        foreach (var (type, e) in json.Components("normalizer").Where(c => c.Type != "Sequence"))
        {
            if (type == "Prepend" && HubTokenizerJson.StringOf(e, "prepend") == Metaspace.ToString())
                _prefix = Prefix.EverySegment;
            else if (type == "Replace" && e.TryGetProperty("pattern", out var pattern)
                     && HubTokenizerJson.StringOf(pattern, "String") == " " && HubTokenizerJson.StringOf(e, "content") == Metaspace.ToString())
                _replaceSpaces = true;
            else
                throw json.Malformed($"normalizer \"{type}\" is not supported here (only Prepend '▁' and Replace ' ' -> '▁').");
        }
        foreach (var (type, e) in json.Components("pre_tokenizer").Where(c => c.Type != "Sequence"))
        {
            if (type != "Metaspace")
                throw json.Malformed($"pre-tokenizer \"{type}\" is not supported here (only Metaspace).");
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

        VocabSize = Math.Max(_pieceById.Keys.DefaultIfEmpty(-1).Max(), _addedById.Keys.DefaultIfEmpty(-1).Max()) + 1;
        string? leading = json.TemplateLeadingSpecialToken();
        PrependsBosByItself = leading is not null;
        // TransformerLens's defaults: BOS and padding fall back to EOS when the tokenizer has none.
        EosTokenId = json.IdOf("</s>");
        BosTokenId = (leading is null ? null : json.IdOf(leading)) ?? json.IdOf("<s>") ?? EosTokenId;
        PadTokenId = EosTokenId;
    }

    /// <summary>Reads a SentencePiece-style BPE tokenizer.json (model "BPE" with '▁' and, usually, byte fallback).</summary>
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
        int segmentStart = 0, i = 0;
        while (i < text.Length)
        {
            // Added tokens are cut out first, leftmost and then longest, as Hugging Face does.
            var added = _addedLongestFirst.FirstOrDefault(a => string.CompareOrdinal(text, i, a.Content, 0, a.Content.Length) == 0);
            if (added is null) { i++; continue; }
            EncodeSegment(text[segmentStart..i], segmentStart == 0, ids);
            ids.Add(added.Id);
            i += added.Content.Length;
            segmentStart = i;
        }
        EncodeSegment(text[segmentStart..], segmentStart == 0, ids);
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
                throw new ArgumentException($"Character '{rune}' (U+{rune.Value:X4}) is not in the vocabulary of {Name}, which has neither byte fallback nor an unknown token.");
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
    /// Hugging Face's decoding (special tokens kept): '▁' becomes a space, runs of byte pieces become
    /// their UTF-8 text (U+FFFD per byte when invalid), and one leading space, from the '▁' prefix, is dropped.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var text = new StringBuilder();
        var pendingBytes = new List<byte>();
        var strictUtf8 = new UTF8Encoding(false, true);
        void FlushBytes()
        {
            if (pendingBytes.Count == 0) return;
            try { text.Append(strictUtf8.GetString(pendingBytes.ToArray())); }
            catch (DecoderFallbackException) { text.Append('\uFFFD', pendingBytes.Count); }
            pendingBytes.Clear();
        }
        foreach (int id in ids)
        {
            if (!_addedById.ContainsKey(id) && _byteFallback && TryParseBytePiece(PieceOf(id), out byte b))
            {
                pendingBytes.Add(b);
                continue;
            }
            FlushBytes();
            text.Append(IdToToken(id));
        }
        FlushBytes();
        if (_prefix != Prefix.Never && text.Length > 0 && text[0] == ' ') text.Remove(0, 1);
        return text.ToString();
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
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the vocabulary of {Name} (size {VocabSize}).");

    static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }
}
