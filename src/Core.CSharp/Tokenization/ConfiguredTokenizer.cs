namespace Lens.Tokenization;

/// <summary>
/// A tokenizer whose BOS/EOS/padding ids and BOS habit come from a checkpoint's configuration files
/// (tokenizer_config.json and friends) rather than from the tokenizer file itself; everything else is
/// the inner tokenizer's.
/// </summary>
public sealed class ConfiguredTokenizer : ITokenizer
{
    public ConfiguredTokenizer(ITokenizer inner, int? bos, int? eos, int? pad, bool prependsBos)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        BosTokenId = bos;
        EosTokenId = eos;
        PadTokenId = pad;
        PrependsBosByItself = prependsBos;
    }

    public ITokenizer Inner { get; }
    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public bool PrependsBosByItself { get; }
    public string Name => Inner.Name;
    public int VocabSize => Inner.VocabSize;
    public IReadOnlyList<int> Encode(string text) => Inner.Encode(text);
    public string Decode(IEnumerable<int> ids) => Inner.Decode(ids);
    public string IdToToken(int id) => Inner.IdToToken(id);
    public int? TokenToId(string piece) => Inner.TokenToId(piece);
}
