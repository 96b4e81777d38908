namespace Lens.Tokenization;

/// <summary>TransformerLens's tokenisation helpers (to_tokens, to_str_tokens, to_single_token,
/// get_token_position).</summary>
public static class TokenizerOps
{
    /// <summary>
    /// The ids of one text, with BOS first when <paramref name="prependBos"/>. Since
    /// <see cref="ITokenizer.Encode"/> never adds BOS, this adds it for every tokenizer, including those that
    /// would add it themselves; the result is what TransformerLens gets either way.
    /// </summary>
    public static int[] ToTokenIds(ITokenizer tok, string text, bool prependBos)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(text);
        var ids = tok.Encode(text);
        if (!prependBos) return ids.ToArray();
        int bos = tok.BosTokenId
            ?? throw new InvalidOperationException(
            $"Tokenizer {tok.Name} has no BOS token, so BOS cannot be prepended.");
        var result = new int[ids.Count + 1];
        result[0] = bos;
        for (int i = 0; i < ids.Count; i++) result[i + 1] = ids[i];
        return result;
    }

    /// <summary>
    /// A batch of texts as a [batch, longest] id matrix: BOS first when asked, shorter rows padded with the
    /// pad token on <paramref name="paddingSide"/> ("right" or "left").
    /// </summary>
    public static long[,] ToTokens(ITokenizer tok, IReadOnlyList<string> texts, bool prependBos,
        string paddingSide = "right") =>
        ToTokensAndMask(tok, texts, prependBos, paddingSide).Tokens;

    /// <summary>
    /// As <see cref="ToTokens"/>, with the attention mask [batch, longest]: 1 on each text's own tokens, 0 on
    /// its pads (the pad id may equal BOS or EOS, so the mask cannot be recovered from the ids).
    /// </summary>
    public static (long[,] Tokens, long[,] Mask) ToTokensAndMask(ITokenizer tok, IReadOnlyList<string> texts,
        bool prependBos, string paddingSide = "right")
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (paddingSide != "right" && paddingSide != "left")
            throw new ArgumentException($"paddingSide must be \"right\" or \"left\", not \"{paddingSide}\".",
                nameof(paddingSide));
        var rows = texts.Select(t => ToTokenIds(tok, t, prependBos)).ToArray();
        int width = rows.Length == 0 ? 0 : rows.Max(r => r.Length);
        long pad = 0;
        if (rows.Any(r => r.Length < width))
            pad = tok.PadTokenId
                ?? throw new InvalidOperationException(
                $"Tokenizer {tok.Name} has no padding token, so texts of different lengths cannot be batched.");

        var result = new long[rows.Length, width];
        var mask = new long[rows.Length, width];
        for (int b = 0; b < rows.Length; b++)
        {
            int offset = paddingSide == "left" ? width - rows[b].Length : 0;
            for (int j = 0; j < width; j++) result[b, j] = pad;
            for (int j = 0; j < rows[b].Length; j++) { result[b, offset + j] = rows[b][j]; mask[b, offset + j] = 1; }
        }
        return (result, mask);
    }

    /// <summary>Each id as its display piece (GPT-2's 3797 is " cat").</summary>
    public static string[] ToStrTokens(ITokenizer tok, IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(ids);
        return ids.Select(tok.IdToToken).ToArray();
    }

    /// <summary>A text's display pieces, BOS first when asked.</summary>
    public static string[] ToStrTokens(ITokenizer tok, string text, bool prependBos) =>
        ToStrTokens(tok, ToTokenIds(tok, text, prependBos));

    /// <summary>The id of a string that must encode to exactly one token (no BOS).</summary>
    public static int ToSingleToken(ITokenizer tok, string text)
    {
        ArgumentNullException.ThrowIfNull(tok);
        ArgumentNullException.ThrowIfNull(text);
        var ids = tok.Encode(text);
        if (ids.Count != 1)
            throw new ArgumentException(
                $"\"{text}\" is not a single token: {tok.Name} encodes it as {ids.Count} tokens " +
                    $"[{string.Join(", ", ids)}].", nameof(text));
        return ids[0];
    }

    /// <summary>
    /// Position of <paramref name="singleToken"/> in the tokens of <paramref name="text"/> (BOS first when
    /// asked): the first occurrence for mode "first", the last for "last".
    /// </summary>
    public static int GetTokenPosition(ITokenizer tok, string singleToken, string text, bool prependBos,
        string mode = "first")
    {
        if (mode != "first" && mode != "last")
            throw new ArgumentException($"mode must be \"first\" or \"last\", not \"{mode}\".", nameof(mode));
        int id = ToSingleToken(tok, singleToken);
        var ids = ToTokenIds(tok, text, prependBos);
        int position = mode == "first" ? Array.IndexOf(ids, id) : Array.LastIndexOf(ids, id);
        if (position < 0)
            throw new ArgumentException($"The token \"{singleToken}\" (id {id}) does not occur in the tokens of " +
                $"\"{text}\".", nameof(singleToken));
        return position;
    }
}
