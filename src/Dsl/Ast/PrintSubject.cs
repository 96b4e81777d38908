namespace Lens.Dsl;

/// <summary>What `print` prints.</summary>
public abstract record PrintSubject
{
    private protected PrintSubject() { }

    public sealed override string ToString() => Printer.Print(this);
}

/// <summary>`print induction`: a let-bound name or the name of a result (resolved by the runtime).</summary>
public sealed record PrintName(string Name) : PrintSubject
{
    private Valid Plain { get; } = Valid.Require(Keywords.IsIdentifier(Name) && !ActName.IsFullName(Name),
        $"'{Name}' is not a plain name (a name is an identifier not starting with hook_)");
}

/// <summary>`print blocks.1.attn.hook_pattern` or `print pattern 1`: an activation.</summary>
public sealed record PrintHook(HookRef Hook) : PrintSubject;
