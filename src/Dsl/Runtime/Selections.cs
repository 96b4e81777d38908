namespace Lens.Dsl.Runtime;

/// <summary>
/// Turns a <see cref="Selection"/> into the heads it picks, in layer-then-head order. Layers (`L1`, `L*`)
/// stand for all their heads; `where` conditions read score tables; names read let-bound selections.
/// </summary>
public static class Selections
{
    public static IReadOnlyList<HeadRef> Resolve(Selection selection, int layers, int heads,
        Func<string, IReadOnlyList<HeadRef>> named, Func<ScoreKind, double[][]> scores) =>
        Set(selection, layers, heads, named, scores).Order().ToList();

    /// <summary>Whether the selection names whole layers only (`L1`, `L*`): ablating it removes the layers' blocks, not
    /// just their heads.</summary>
    public static bool IsWholeLayers(Selection selection) => selection is LayerSelector;

    /// <summary>Parses selection text (`L1H*`, `L0H1, L1H2`, `where induction > 0.5`) into a selection node.</summary>
    public static Selection Parse(string text)
    {
        var script = Parser.Parse("heads " + text, "<selection>");
        return script.Statements is [HeadsStatement heads] ? heads.Selection
            : throw new ArgumentException($"'{text}' is not one head selection");
    }

    static HashSet<HeadRef> Set(Selection selection, int layers, int heads,
        Func<string, IReadOnlyList<HeadRef>> named, Func<ScoreKind, double[][]> scores)
    {
        HashSet<HeadRef> Of(Selection s) => Set(s, layers, heads, named, scores);
        switch (selection)
        {
            case HeadSelector s:
                return [.. Range(s.Layer, layers).SelectMany(l => Range(s.Head, heads).Select(h => new HeadRef(l, h)))];
            case LayerSelector s:
                return [.. Range(s.Layer, layers)
                    .SelectMany(l => Enumerable.Range(0, heads).Select(h => new HeadRef(l, h)))];
            case ScoreFilter s:
            {
                var tables = s.Conditions.Select(c => (Condition: c, Table: scores(c.Score))).ToList();
                var picked = new HashSet<HeadRef>();
                for (int l = 0; l < layers; l++)
                    for (int h = 0; h < heads; h++)
                        if (tables.All(t => Meets(t.Table[l][h], t.Condition))) picked.Add(new HeadRef(l, h));
                return picked;
            }
            case SelectionName s:
                return [.. named(s.Name)];
            case SelectionUnion s:
                return s.Parts.Aggregate(new HashSet<HeadRef>(),
                    (all, part) => { all.UnionWith(Of(part)); return all; });
            case SelectionExcept s:
            {
                var included = Of(s.Included);
                included.ExceptWith(Of(s.Excluded));
                return included;
            }
            default:
                throw new ArgumentException($"cannot resolve selection {selection.GetType().Name}");
        }
    }

    static IEnumerable<int> Range(int? index, int count) => index is int i ? [i] : Enumerable.Range(0, count);

    public static bool Meets(double value, ScoreCondition condition) => condition.Comparison switch
    {
        Comparison.Greater => value > condition.Threshold,
        Comparison.GreaterOrEqual => value >= condition.Threshold,
        Comparison.Less => value < condition.Threshold,
        _ => value <= condition.Threshold,
    };

    /// <summary>The explicit layer and head indices a selection writes (for range checks), with the node that wrote
    /// them.</summary>
    public static IEnumerable<(Selection Node, int? Layer, int? Head)> Indices(Selection selection) => selection switch
    {
        HeadSelector s => [(s, s.Layer, s.Head)],
        LayerSelector s => [(s, s.Layer, null)],
        SelectionUnion s => s.Parts.SelectMany(Indices),
        SelectionExcept s => Indices(s.Included).Concat(Indices(s.Excluded)),
        _ => [],
    };

    /// <summary>The score kinds a selection's `where` conditions read.</summary>
    public static IEnumerable<ScoreKind> ScoreKinds(Selection selection) => selection switch
    {
        ScoreFilter s => s.Conditions.Select(c => c.Score),
        SelectionUnion s => s.Parts.SelectMany(ScoreKinds),
        SelectionExcept s => ScoreKinds(s.Included).Concat(ScoreKinds(s.Excluded)),
        _ => [],
    };

    /// <summary>The let-bound names a selection reads.</summary>
    public static IEnumerable<string> Names(Selection selection) => selection switch
    {
        SelectionName s => [s.Name],
        SelectionUnion s => s.Parts.SelectMany(Names),
        SelectionExcept s => Names(s.Included).Concat(Names(s.Excluded)),
        _ => [],
    };
}
