namespace Lens.Tokenization;

/// <summary>
/// Finds tokenizer.json's added tokens in raw text as Hugging Face does before anything else: the
/// leftmost occurrence, and of those starting there the longest. The text between them is what the
/// normalizer, pre-tokenizer and model see.
/// </summary>
internal sealed class AddedTokenMatcher
{
    readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IEnumerable<AddedToken> added)
    {
        _byFirstChar = added.GroupBy(a => a.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(a => a.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>The text cut into pieces: (start, length, the added token there or null for plain text).</summary>
    public IEnumerable<(int Start, int Length, AddedToken? Token)> Split(string text)
    {
        int plainStart = 0;
        for (int i = 0; i < text.Length;)
        {
            var token = At(text, i);
            if (token is null) { i++; continue; }
            if (i > plainStart) yield return (plainStart, i - plainStart, null);
            yield return (i, token.Content.Length, token);
            i += token.Content.Length;
            plainStart = i;
        }
        if (text.Length > plainStart) yield return (plainStart, text.Length - plainStart, null);
    }

    AddedToken? At(string text, int i)
    {
        if (!_byFirstChar.TryGetValue(text[i], out var candidates)) return null;
        foreach (var a in candidates)
            if (string.CompareOrdinal(text, i, a.Content, 0, a.Content.Length) == 0) return a;
        return null;
    }
}
