namespace Lens.Tokenization;

/// <summary>
/// A text tokenizer as the model layer sees it. <see cref="Encode"/> turns raw text into ids and never
/// adds special tokens (no BOS, no EOS); callers that want BOS add it (see <see cref="TokenizerOps"/>).
/// </summary>
public interface ITokenizer
{
    /// <summary>Raw text to token ids, with no special tokens added.</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>Token ids back to text.</summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>The piece of one id as display text (GPT-2's 3797 is " cat", with a real leading space).</summary>
    string IdToToken(int id);

    /// <summary>The id of a piece given as display text (the inverse of <see cref="IdToToken"/>), or null.</summary>
    int? TokenToId(string piece);

    /// <summary>Number of ids: one more than the largest id the tokenizer knows.</summary>
    int VocabSize { get; }

    int? BosTokenId { get; }
    int? EosTokenId { get; }
    int? PadTokenId { get; }

    /// <summary>
    /// Whether the underlying tokenizer would add BOS by itself (TransformerLens's
    /// <c>tokenizer_prepends_bos</c>). Informational: <see cref="Encode"/> never adds it.
    /// </summary>
    bool PrependsBosByItself { get; }

    /// <summary>A short human-readable name ("gpt2", the file it came from, ...).</summary>
    string Name { get; }
}
