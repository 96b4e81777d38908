namespace Lens;

/// <summary>Lists of names in messages: "a, b or c".</summary>
public static class Listing
{
    /// <summary>"a", "a or b", "a, b or c"; empty for no items.</summary>
    public static string Or(IEnumerable<string> items)
    {
        var list = items.ToList();
        return list.Count <= 1 ? string.Concat(list) : string.Join(", ", list.Take(list.Count - 1)) + " or " + list[^1];
    }
}
