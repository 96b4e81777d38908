using System.Text;

namespace Lens.Dsl;

/// <summary>
/// Text from an experiment (its lines, paths and strings) made safe to print on a terminal: control characters,
/// which a terminal would obey (an escape sequence can recolour, move the cursor or retitle the window), are shown
/// as visible stand-ins of the same width, so a caret under a column still points at the same character.
/// </summary>
public static class TerminalText
{
    /// <summary>
    /// C0 controls other than tab and line break become their Unicode control pictures (ESC as ␛), DEL ␡, C1
    /// controls '�'.
    /// </summary>
    public static string Visible(string text)
    {
        var unsafeAt = text.AsSpan().IndexOfAnyInRange('\0', '\u001f');
        if (unsafeAt < 0 && !text.AsSpan().ContainsAnyInRange('\u007f', '\u009f')) return text;
        var visible = new StringBuilder(text.Length);
        foreach (var c in text)
            visible.Append(c switch
            {
                '\t' or '\n' => c,
                < '\u0020' => (char)('\u2400' + c),
                '\u007f' => '\u2421',
                >= '\u0080' and <= '\u009f' => '\ufffd',
                _ => c,
            });
        return visible.ToString();
    }
}
