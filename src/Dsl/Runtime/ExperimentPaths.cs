using Lens.IO;

namespace Lens.Dsl.Runtime;

/// <summary>
/// The files an experiment reads and writes, found from its statements (blocks included) before it runs, so that
/// outputs can be checked against inputs and against each other before any work starts.
/// </summary>
public static class ExperimentPaths
{
    /// <summary>
    /// Checks before any work: the <paramref name="options"/>' outputs (--json, --html) first, a problem with
    /// them going to <paramref name="usage"/> (which throws), then the statements' own
    /// (`show > FILE`, `cache save`): writable files, none an input, no two the same. A `cache load` of a file the
    /// experiment itself saves is not an input to protect.
    /// </summary>
    public static void Check(IEnumerable<Statement> statements, ExperimentEnvironment environment,
        IReadOnlyList<(string What, string Path)> options, Action<string> usage)
    {
        var outputs = Outputs(statements, environment);
        var inputs = Inputs(statements, environment)
            .Where(i => !(i.What.StartsWith("`cache load`", StringComparison.Ordinal)
            && outputs.Any(o => OutputPaths.Same(o.Path, i.Path))))
            .ToList();
        try { OutputPaths.Check(options, inputs, outputs); }
        catch (OutputPathException e) { usage(e.Message); }
        OutputPaths.Check(outputs, inputs);
    }

    /// <summary>Each file the experiment writes: what writes it (the statement and its line) and its full
    /// path.</summary>
    public static IReadOnlyList<(string What, string Path)> Outputs(IEnumerable<Statement> statements,
        ExperimentEnvironment environment) =>
        All(statements).SelectMany<Statement, (string, string)>(s => s switch
        {
            ShowStatement { OutputPath: string path } => [(Named(s, "show"), environment.WritePath(path))],
            CacheStatement { Action: CacheAction.Save } c => [(Named(s, "cache save"), environment.WritePath(c.Path))],
            _ => [],
        }).ToList();

    /// <summary>Each file the experiment reads: the experiment itself, `input file`s and `cache load`s.</summary>
    public static IReadOnlyList<(string What, string Path)> Inputs(IEnumerable<Statement> statements,
        ExperimentEnvironment environment)
    {
        var inputs = new List<(string, string)>();
        if (File.Exists(environment.FileName))
            inputs.Add(("the experiment itself", Path.GetFullPath(environment.FileName)));
        foreach (var s in All(statements))
        {
            switch (s)
            {
                case CacheStatement { Action: CacheAction.Load } c:
                    inputs.Add((Named(s, "cache load"), environment.ReadPath(c.Path)));
                    break;
                case InputStatement { Source: FileInput f }:
                    inputs.Add((Named(s, "input file"), environment.ReadPath(f.Path)));
                    break;
                case LetStatement { Value: InputValue { Source: FileInput f } }:
                    inputs.Add((Named(s, "input file"), environment.ReadPath(f.Path)));
                    break;
                case PatchStatement { Source: FileInput f }:
                    inputs.Add((Named(s, "input file"), environment.ReadPath(f.Path)));
                    break;
            }
        }
        return inputs;
    }

    static string Named(Statement s, string command) =>
        s.Span.Line > 0 ? $"`{command}` (line {s.Span.Line})" : $"`{command}`";

    /// <summary>Every statement, blocks' bodies after their header, in file order (without recursion).</summary>
    static IEnumerable<Statement> All(IEnumerable<Statement> statements)
    {
        var pending = new Stack<IEnumerator<Statement>>();
        pending.Push(statements.GetEnumerator());
        while (pending.TryPeek(out var current))
        {
            if (!current.MoveNext()) { current.Dispose(); pending.Pop(); continue; }
            yield return current.Current;
            if (current.Current is InterventionStatement { Body: { } body }) pending.Push(body.GetEnumerator());
        }
    }
}
