using System.Globalization;
using System.Text;

namespace Lens.Visualization;

/// <summary>
/// A plain-text table for the terminal: columns padded to their widest cell, numeric columns right
/// aligned, a dashed rule under the header. Widths count text elements (an emoji is one), which
/// suits ordinary terminals for ASCII and most Unicode.
/// </summary>
public static class TextTable
{
    public static string Render(string[] header, string[][] rows)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(rows);
        if (header.Length == 0) throw new ArgumentException("a table needs at least one column.", nameof(header));
        for (var r = 0; r < rows.Length; r++)
            if (rows[r] is null || rows[r].Length != header.Length)
                throw new ArgumentException(
                    $"row {r} has {rows[r]?.Length ?? 0} cells but the header has {header.Length}.", nameof(rows));

        var cols = header.Length;
        var cells = rows.Select(r => r.Select(Clean).ToArray()).ToArray();
        var head = header.Select(Clean).ToArray();
        var width = Enumerable.Range(0, cols).Select(c => cells.Select(r => Width(r[c])).Append(Width(head[c])).Max())
            .ToArray();
        var right = Enumerable.Range(0, cols).Select(c => rows.Length > 0 && cells.All(r => IsNumber(r[c]))).ToArray();

        var sb = new StringBuilder();
        void Line(string[] row)
        {
            var line = new StringBuilder();
            for (var c = 0; c < cols; c++)
            {
                if (c > 0) line.Append("  ");
                var padding = new string(' ', width[c] - Width(row[c]));
                line.Append(right[c] ? padding + row[c] : row[c] + padding);
            }
            sb.Append(line.ToString().TrimEnd()).Append('\n');
        }
        Line(head);
        sb.Append(string.Join("  ", width.Select(w => new string('-', Math.Max(1, w))))).Append('\n');
        foreach (var r in cells) Line(r);
        return sb.ToString();
    }

    /// <summary>True for cells that read as numbers (including nan/inf), which are right aligned.</summary>
    internal static bool IsNumber(string s) =>
        s.Length > 0 && (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _) ||
                         s is "nan" or "NaN" or "inf" or "-inf" or "∞" or "-∞");

    // Cells are one line each: line breaks and tabs are shown as in tokens.
    static string Clean(string? s) => (s ?? "").Replace("\r\n", "↵").Replace('\n', '↵').Replace('\t', '⇥');

    static int Width(string s) => new StringInfo(s).LengthInTextElements;
}
