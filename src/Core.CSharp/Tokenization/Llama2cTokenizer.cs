using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Lens.Tokenization;

/// <summary>
/// llama2.c's tokenizer (<c>tokenizer.bin</c>, <c>tok512.bin</c>): scored pieces, merged exactly as
/// llama2.c's run.c does. <see cref="Encode"/> gives run.c's ids minus the leading BOS, so it includes the
/// dummy-prefix " " piece (merged into the first word) for non-empty text. BOS = 1, EOS = 2.
/// </summary>
public sealed class Llama2cTokenizer : ITokenizer
{
    public const int Bos = 1, Eos = 2;
    const int ByteFallbackOffset = 3; // <0x00> is id 3

    readonly byte[][] _pieces;
    readonly float[] _scores;
    readonly Dictionary<string, int> _idByPiece;
    readonly int _dummyPrefix;

    Llama2cTokenizer(string path, byte[][] pieces, float[] scores, int maxTokenLength)
    {
        Name = Path.GetFileName(path);
        _pieces = pieces;
        _scores = scores;
        MaxTokenLength = maxTokenLength;
        _idByPiece = new Dictionary<string, int>();
        for (int i = 0; i < pieces.Length; i++) _idByPiece.TryAdd(Encoding.UTF8.GetString(pieces[i]), i);
        _dummyPrefix = _idByPiece.TryGetValue(" ", out int space) ? space
            : throw new TokenizerFileException(path, "has no \" \" piece, which llama2.c needs as the dummy prefix.");
    }

    /// <summary>
    /// Reads a llama2.c tokenizer file: int32 max_token_length, then per piece a float32 score, an int32
    /// byte length and the bytes. The file does not store the vocabulary size; pass the checkpoint's, or
    /// leave it out to read pieces until the file ends.
    /// </summary>
    public static Llama2cTokenizer Load(string path, int? vocabSize = null)
    {
        TokenizerFileException.ThrowIfMissing(path);
        if (vocabSize is <= ByteFallbackOffset + 255)
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize,
                "A llama2.c vocabulary holds at least the 3 control pieces and 256 byte pieces.");
        byte[] data = File.ReadAllBytes(path);
        if (data.Length < 4)
            throw new TokenizerFileException(path,
                $"is {data.Length} bytes long, too short for a llama2.c tokenizer header.");
        int maxTokenLength = BinaryPrimitives.ReadInt32LittleEndian(data);
        if (maxTokenLength <= 0)
            throw new TokenizerFileException(path,
                $"max_token_length {maxTokenLength} is not positive; not a llama2.c tokenizer.");

        var pieces = new List<byte[]>();
        var scores = new List<float>();
        int offset = 4;
        while (vocabSize is { } n ? pieces.Count < n : offset < data.Length)
        {
            int index = pieces.Count;
            if (data.Length - offset < 8)
                throw new TokenizerFileException(path,
                    $"ends inside the header of piece {index} (offset {offset}, {data.Length} bytes in all).");
            float score = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(offset));
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset + 4));
            offset += 8;
            if (length < 0 || length > data.Length - offset)
                throw new TokenizerFileException(path,
                    $"piece {index} claims {length} bytes but only {data.Length - offset} remain.");
            pieces.Add(data.AsSpan(offset, length).ToArray());
            scores.Add(score);
            offset += length;
        }
        if (offset != data.Length)
            throw new TokenizerFileException(path,
                $"has {data.Length - offset} bytes left over after {pieces.Count} pieces.");
        if (pieces.Count < ByteFallbackOffset + 256)
            throw new TokenizerFileException(path,
                $"has only {pieces.Count} pieces; llama2.c needs <unk>, BOS, EOS and 256 byte pieces.");
        return new Llama2cTokenizer(path, pieces.ToArray(), scores.ToArray(), maxTokenLength);
    }

    public string Name { get; }
    public int MaxTokenLength { get; }
    public int VocabSize => _pieces.Length;
    public int? BosTokenId => Bos;
    public int? EosTokenId => Eos;
    /// <summary>llama2.c has no padding piece; as TransformerLens does for such tokenizers, padding uses EOS.</summary>
    public int? PadTokenId => Eos;
    /// <summary>run.c always starts a prompt with BOS.</summary>
    public bool PrependsBosByItself => true;

    /// <summary>The score of a piece (higher merges first).</summary>
    public float Score(int id) => _scores[CheckId(id)];

    public IReadOnlyList<int> Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) return Array.Empty<int>();

        var symbols = new List<int> { _dummyPrefix };
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune rune in text.EnumerateRunes())
        {
            if (_idByPiece.TryGetValue(rune.ToString(), out int id))
            {
                symbols.Add(id);
            }
            else
            {
                int count = rune.EncodeToUtf8(utf8);
                for (int i = 0; i < count; i++) symbols.Add(utf8[i] + ByteFallbackOffset);
            }
        }

        return PairMerger.Merge(symbols, (left, right) =>
            _idByPiece.TryGetValue(Encoding.UTF8.GetString(Concat(_pieces[left], _pieces[right])), out int merged)
                ? (-(double)_scores[merged], merged)
                : null);
    }

    /// <summary>
    /// run.c's decoding: BOS and EOS print nothing, the piece right after BOS loses its leading space,
    /// and "&lt;0xXX&gt;" pieces become the raw byte. Invalid UTF-8 becomes U+FFFD.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        int previous = -1;
        foreach (int id in ids)
        {
            CheckId(id);
            if (id != Bos && id != Eos)
            {
                byte[] piece = _pieces[id];
                if (TryParseBytePiece(piece, out byte raw)) bytes.Add(raw);
                else bytes.AddRange(previous == Bos && piece.Length > 0 && piece[0] == (byte)' ' ? piece[1..] : piece);
            }
            previous = id;
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The piece as stored ("\n&lt;s&gt;\n" for BOS, " Once", "&lt;0xF0&gt;").</summary>
    public string IdToToken(int id) => Encoding.UTF8.GetString(_pieces[CheckId(id)]);

    public int? TokenToId(string piece)
    {
        ArgumentNullException.ThrowIfNull(piece);
        return _idByPiece.TryGetValue(piece, out int id) ? id : null;
    }

    int CheckId(int id) =>
        id >= 0 && id < _pieces.Length ? id
        : throw new ArgumentOutOfRangeException(nameof(id), id,
            $"Token id {id} is not in the vocabulary of {Name} (size {VocabSize}).");

    static byte[] Concat(byte[] a, byte[] b)
    {
        var result = new byte[a.Length + b.Length];
        a.CopyTo(result, 0);
        b.CopyTo(result, a.Length);
        return result;
    }

    static bool TryParseBytePiece(byte[] piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece[0] == '<' && piece[1] == '0' && piece[2] == 'x' && piece[5] == '>'
            && byte.TryParse(Encoding.ASCII.GetString(piece, 3, 2), NumberStyles.AllowHexSpecifier,
            CultureInfo.InvariantCulture, out value);
    }
}
