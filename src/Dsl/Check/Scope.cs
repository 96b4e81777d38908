namespace Lens.Dsl;

/// <summary>What kind of value a let-bound name holds, which decides where it may be used.</summary>
internal enum BindingKind { Selection, Input, Pattern }

/// <summary>The let-bound names visible at a point of the script: a block sees its own and its enclosing
/// ones.</summary>
internal sealed class Scope(Scope? parent)
{
    public Scope? Parent { get; } = parent;

    private readonly Dictionary<string, BindingKind> names = new();

    public void Bind(string name, BindingKind kind) => names[name] = kind;

    public BindingKind? Lookup(string name) => names.TryGetValue(name, out var kind) ? kind : Parent?.Lookup(name);

    /// <summary>The visible names that hold <paramref name="kind"/> (an inner binding hides an outer one).</summary>
    public IEnumerable<string> Names(BindingKind kind)
    {
        var seen = new HashSet<string>();
        for (var scope = this; scope is not null; scope = scope.Parent)
            foreach (var (name, k) in scope.names)
                if (seen.Add(name) && k == kind) yield return name;
    }

    public static string Describe(BindingKind kind) => kind switch
    {
        BindingKind.Selection => "a head selection",
        BindingKind.Input => "an input",
        _ => "a detection pattern",
    };
}
