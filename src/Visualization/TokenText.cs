using System.Text;

namespace Lens.Visualization;

/// <summary>
/// How a token is shown: whitespace made visible as CircuitsVis does (␣ for leading spaces, ↵ for
/// a newline, ⇥ for a tab, control pictures for other control characters, ∅ for the empty token).
/// The result is plain text; renderers escape it for HTML or JS.
/// </summary>
public static class TokenText
{
    public static string Display(string? token)
    {
        if (string.IsNullOrEmpty(token)) return "∅";
        var sb = new StringBuilder(token.Length + 2);
        var leading = true;
        for (var i = 0; i < token.Length; i++)
        {
            var c = token[i];
            if (c == ' ' && leading) { sb.Append('␣'); continue; }
            leading = false;
            switch (c)
            {
                case '\r' when i + 1 < token.Length && token[i + 1] == '\n': break; // "\r\n" shows as one ↵
                case '\n': sb.Append('↵'); break;
                case '\r': sb.Append('␍'); break;
                case '\t': sb.Append('⇥'); break;
                case < ' ': sb.Append((char)(0x2400 + c)); break; // U+2400.. "control pictures"
                case '\u007f': sb.Append('␡'); break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }
}
