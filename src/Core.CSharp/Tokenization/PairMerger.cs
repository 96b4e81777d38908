namespace Lens.Tokenization;

/// <summary>
/// The greedy loop shared by BPE flavours: repeatedly merge the adjacent pair with the best (lowest)
/// priority, the leftmost one on ties, until no adjacent pair merges. Merge-rank BPE (Hugging Face)
/// uses the merge's rank as priority; llama2.c uses minus the merged piece's score.
/// </summary>
internal static class PairMerger
{
    /// <summary>How (left, right) merge: the merged id and its priority, or null when they do not.</summary>
    public delegate (double Priority, int Merged)? TryMerge(int left, int right);

    public static List<int> Merge(IReadOnlyList<int> symbols, TryMerge tryMerge)
    {
        int n = symbols.Count;
        var ids = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        var alive = Enumerable.Repeat(true, n).ToArray();

        // Entries are (left position, left id, right id, merged id), ordered by (priority, left position).
        // Positions are indices into the original symbols, so "smaller position" means "further left".
        var queue = new PriorityQueue<(int Pos, int Left, int Right, int Merged), (double, int)>();
        void Offer(int pos)
        {
            if (pos < 0 || next[pos] < 0) return;
            if (tryMerge(ids[pos], ids[next[pos]]) is { } m)
                queue.Enqueue((pos, ids[pos], ids[next[pos]], m.Merged), (m.Priority, pos));
        }
        for (int i = 0; i + 1 < n; i++) Offer(i);

        while (queue.TryDequeue(out var e, out _))
        {
            // Skip entries made stale by an earlier merge of either symbol.
            if (!alive[e.Pos] || next[e.Pos] < 0 || ids[e.Pos] != e.Left || ids[next[e.Pos]] != e.Right) continue;
            int right = next[e.Pos];
            ids[e.Pos] = e.Merged;
            alive[right] = false;
            next[e.Pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = e.Pos;
            Offer(prev[e.Pos]);
            Offer(e.Pos);
        }

        var result = new List<int>(n);
        for (int i = 0; i < n; i++) if (alive[i]) result.Add(ids[i]);
        return result;
    }
}
