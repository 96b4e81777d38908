using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Lens.Tokenization;

/// <summary>
/// Hugging Face's <c>Split</c> pre-tokenizer with behaviour <c>Isolated</c> (Llama 3, Qwen): added tokens
/// are cut out of the raw text first, the text between them is normalized (NFC for Qwen), and then each
/// regex match and each stretch between matches is its own piece.
/// .NET's regex sees UTF-16 units, so a letter or digit outside the Basic Multilingual Plane would not
/// match \p{L} or \p{N} as it does in Hugging Face; such text is refused rather than split differently.
/// </summary>
internal sealed class IsolatedSplitPreTokenizer
{
    readonly Regex _regex;
    readonly bool _classesLettersOrDigits;
    readonly AddedTokenMatcher _added;
    readonly NormalizationForm? _normalization;
    readonly string _source;

    public IsolatedSplitPreTokenizer(Regex regex, AddedTokenMatcher added, NormalizationForm? normalization,
        string source)
    {
        _regex = regex;
        _classesLettersOrDigits = regex.ToString() is var pattern
            && (pattern.Contains(@"\p{", StringComparison.Ordinal) || pattern.Contains(@"\P{", StringComparison.Ordinal)
                || pattern.Contains(@"\w", StringComparison.OrdinalIgnoreCase)
                || pattern.Contains(@"\d", StringComparison.OrdinalIgnoreCase));
        _added = added;
        _normalization = normalization;
        _source = source;
    }

    /// <summary>The pieces of a text, in order: an added token, or a piece of normalized plain text for BPE.</summary>
    public List<(string Piece, AddedToken? Token)> Split(string text)
    {
        var pieces = new List<(string, AddedToken?)>();
        foreach (var (start, length, token) in _added.Split(text))
        {
            if (token is not null) { pieces.Add((token.Content, token)); continue; }
            string plain = text.Substring(start, length);
            if (_normalization is { } form) plain = plain.Normalize(form);
            if (_classesLettersOrDigits) RefuseAstralLettersAndDigits(plain);
            int at = 0;
            for (var m = _regex.Match(plain); m.Success; m = m.NextMatch())
            {
                if (m.Length == 0) continue;
                if (m.Index > at) pieces.Add((plain[at..m.Index], null));
                pieces.Add((m.Value, null));
                at = m.Index + m.Length;
            }
            if (plain.Length > at) pieces.Add((plain[at..], null));
        }
        return pieces;
    }

    void RefuseAstralLettersAndDigits(string text)
    {
        for (int i = 0; i < text.Length - 1; i++)
        {
            if (!char.IsSurrogatePair(text[i], text[i + 1])) continue;
            var rune = new Rune(text[i], text[i + 1]);
            var category = Rune.GetUnicodeCategory(rune);
            if (category is <= UnicodeCategory.OtherLetter
                or (>= UnicodeCategory.DecimalDigitNumber and <= UnicodeCategory.OtherNumber))
                throw new ArgumentException(
                    $"The text holds U+{rune.Value:X} ({category}) at character {i}: {_source}'s Split pattern " +
                        $"classes letters and digits with \\p{{L}}/\\p{{N}}, which .NET's regex does not apply to " +
                        $"characters outside the Basic Multilingual Plane, so Lens cannot split this text exactly as " +
                        $"Hugging Face does.");
            i++;
        }
    }
}
