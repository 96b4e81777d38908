namespace Lens.Dsl;

/// <summary>"Did you mean ...?" for misspelt words.</summary>
public static class Suggest
{
    /// <summary>
    /// The candidates nearest to <paramref name="word"/> by Damerau-Levenshtein distance (optimal string alignment,
    /// ignoring case), at most <paramref name="maxDistance"/> edits away and fewer edits than the word has letters
    /// (so `x` does not suggest `ov`). All candidates tied at the smallest distance are returned, in candidate order;
    /// none when nothing is near.
    /// </summary>
    public static IReadOnlyList<string> Nearest(string word, IEnumerable<string> candidates, int maxDistance = 2)
    {
        var best = int.MaxValue;
        var nearest = new List<string>();
        foreach (var candidate in candidates.Distinct())
        {
            var d = Distance(word, candidate);
            if (d > maxDistance || d >= word.Length || d > best) continue;
            if (d < best) { best = d; nearest.Clear(); }
            nearest.Add(candidate);
        }
        return nearest;
    }

    /// <summary>Optimal string alignment distance (insertions, deletions, substitutions, adjacent transpositions), ignoring case.</summary>
    public static int Distance(string a, string b)
    {
        a = a.ToLowerInvariant();
        b = b.ToLowerInvariant();
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        for (var j = 1; j <= b.Length; j++)
        {
            var cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
        }
        return d[a.Length, b.Length];
    }

    /// <summary>"did you mean 'a'?" or "did you mean 'a' or 'b'?"; null when there is nothing to suggest.</summary>
    internal static string? DidYouMean(IReadOnlyList<string> suggestions) =>
        suggestions.Count == 0 ? null : "did you mean " + Keywords.JoinOr(suggestions.Select(s => $"'{s}'")) + "?";
}
