namespace Lens;

/// <summary>
/// Makes a model's hook points: each component asks for its hooks by their short names and the factory
/// derives the full TransformerLens name from the component's path (<c>blocks.1.attn</c> + <c>hook_q</c>
/// = <c>blocks.1.attn.hook_q</c>), and records them in the order they are made. Components make their
/// hook points in the order the forward pass reaches them, so this record is the model's hook_dict and
/// run_with_cache order: one place for name, lookup and order.
/// </summary>
public sealed class HookPointFactory
{
    readonly List<HookPoint> _ordered;
    readonly Dictionary<string, int> _index;
    readonly bool _replacing;

    /// <summary>A factory for a whole model (the root path).</summary>
    public HookPointFactory() : this("", [], [], false) { }

    HookPointFactory(string path, List<HookPoint> ordered, Dictionary<string, int> index, bool replacing)
    {
        Path = path;
        _ordered = ordered;
        _index = index;
        _replacing = replacing;
    }

    /// <summary>The component's path, e.g. <c>blocks.1.attn</c> ("" at the root); also its module name.</summary>
    public string Path { get; }

    /// <summary>The factory of a sub-component, e.g. <c>Under("attn")</c> in <c>blocks.1</c>.</summary>
    public HookPointFactory Under(string component) => new(Join(Path, component), _ordered, _index, _replacing);

    /// <summary>
    /// The factory of a component rebuilt in place (norms replaced after folding): its hook points take
    /// the places of the old ones of the same names, so the order does not change.
    /// </summary>
    public HookPointFactory Replacing(string component) => new(Join(Path, component), _ordered, _index, true);

    /// <summary>
    /// The hook point <paramref name="name"/> of this component. With <paramref name="listed"/> false it
    /// exists (the forward may pass through it) but is not one of the model's hook points, as when
    /// TransformerLens's config leaves it out (no rotary: no hook_rot_q).
    /// </summary>
    public HookPoint Create(string name, bool listed = true)
    {
        var hook = new HookPoint(Join(Path, name));
        if (!listed) return hook;
        if (_replacing)
        {
            if (!_index.TryGetValue(hook.Name, out var at))
                throw new InvalidOperationException(
                    $"hook point {hook.Name} replaces none (the rebuilt component must keep its hook names)");
            _ordered[at] = hook;
        }
        else
        {
            if (!_index.TryAdd(hook.Name, _ordered.Count))
                throw new InvalidOperationException($"hook point {hook.Name} made twice");
            _ordered.Add(hook);
        }
        return hook;
    }

    /// <summary>Every listed hook point, in the order they were made.</summary>
    public IReadOnlyList<HookPoint> Ordered => _ordered;

    static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";
}
