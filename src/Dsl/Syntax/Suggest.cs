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

    /// <summary>Optimal string alignment distance, ignoring case (the core's
    /// <see cref="Lens.Suggestions.Distance"/>).</summary>
    public static int Distance(string a, string b) => Lens.Suggestions.Distance(a, b);

    /// <summary>"did you mean 'a'?" or "did you mean 'a' or 'b'?"; null when there is nothing to suggest.</summary>
    internal static string? DidYouMean(IReadOnlyList<string> suggestions) =>
        suggestions.Count == 0 ? null : "did you mean " + Listing.Or(suggestions.Select(s => $"'{s}'")) + "?";
}
