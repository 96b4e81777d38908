namespace Lens.Cli;

/// <summary>Aligned text tables for the terminal.</summary>
public static class Tables
{
    public static string Render(IReadOnlyList<string> header, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { header.ToArray() };
        all.AddRange(rows);
        var widths =
            Enumerable.Range(0, header.Count).Select(c => all.Max(r => c < r.Length ? r[c].Length : 0)).ToArray();
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < all.Count; i++)
        {
            sb.AppendLine(string.Join("  ", all[i].Select((cell, c) => cell.PadRight(widths[c]))).TrimEnd());
            if (i == 0) sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        }
        return sb.ToString().TrimEnd('\n', '\r');
    }
}
