namespace Lens;

/// <summary>"Did you mean" suggestions by edit distance, for unknown hook names, commands and options.</summary>
public static class Suggestions
{
    /// <summary>Up to <paramref name="max"/> candidates closest to <paramref name="word"/>, within a distance that
    /// scales with its length.</summary>
    public static IReadOnlyList<string> Nearest(string word, IEnumerable<string> candidates, int max = 3)
    {
        int limit = Math.Max(2, word.Length / 3);
        return candidates
            .Select(c => (c, d: Distance(word, c)))
            .Where(x => x.d <= limit)
            .OrderBy(x => x.d).ThenBy(x => x.c, StringComparer.Ordinal)
            .Take(max).Select(x => x.c).ToList();
    }

    /// <summary>Optimal-string-alignment (Damerau–Levenshtein) distance, ignoring case.</summary>
    public static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }
}
