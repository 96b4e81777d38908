using System.Text;

namespace Lens.Tokenization;

/// <summary>
/// GPT-2's byte-level alphabet: each byte is written as one printable character (space is 'Ġ',
/// newline 'Ċ'), which is how vocab.json, merges.txt and tokenizer.json spell byte-level pieces.
/// </summary>
internal static class ByteLevelAlphabet
{
    static readonly char[] ByteToChar = BuildTable();
    static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    static char[] BuildTable()
    {
        // Printable bytes stand for themselves; the rest are shifted past 255 in byte order.
        var table = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return table;
    }

    public static string FromBytes(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(ByteToChar[b]);
        return sb.ToString();
    }

    public static string FromText(string text) => FromBytes(Encoding.UTF8.GetBytes(text));

    /// <summary>The bytes a byte-level piece stands for, or null when it has a character outside the
    /// alphabet.</summary>
    public static byte[]? ToBytes(string piece)
    {
        var bytes = new byte[piece.Length];
        for (int i = 0; i < piece.Length; i++)
        {
            if (!CharToByte.TryGetValue(piece[i], out bytes[i])) return null;
        }
        return bytes;
    }
}
