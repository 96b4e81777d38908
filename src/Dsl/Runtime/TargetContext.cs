namespace Lens.Dsl.Runtime;

/// <summary>
/// What the checks know when they check an `expect` target: the model's layers and heads, the current input's
/// positions and rows, which names are patterns, the statement whose result the target reads, and how to check
/// a token (a string or an id) and a hook name (each returns the problem, or null).
/// </summary>
public sealed record TargetContext(int Layers, int Heads, int? Positions, int? Batch, Func<string, bool> IsPattern)
{
    public Statement? Producer { get; init; }

    public Func<string, string?> TokenProblem { get; init; } = _ => null;

    public Func<string, string?> HookProblem { get; init; } = _ => null;
}
