using System.CommandLine;
using System.Diagnostics;
using Lens.Dsl;
using Lens.Dsl.Runtime;

namespace Lens.Cli.Commands;

/// <summary>
/// <c>lens test [PATH...]</c>: runs every experiment under the paths, several at once, and reports one line per
/// file (its expectations held, one failed, or it had an error) and a final <c>N passed, N failed</c> line.
/// </summary>
public static class TestCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("paths")
        {
            Description = "experiment files or folders (searched for *.lens); default: the current folder",
            Arity = ArgumentArity.ZeroOrMore
        };
        var model =
            new Option<string?>("--model") { Description = "run every experiment on this model instead of its own" };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N" };
        var cmd = new Command("test", """
            Runs every .lens file under the given files and folders (default: the current folder), as many at
            a time as there are cores, and prints one line per file: PASS when it ran and every `expect` held,
            FAIL with each expectation that did not (at FILE:LINE:COLUMN), ERROR when it did not parse, check
            or run. Ends with `N passed, N failed`.
            Exit codes: 0 every file passed, 1 any expectation failed or any file had an error, 2 usage.
            Examples:
              lens test examples
              lens test studies/induction.lens studies/patching
              lens test --model ./models/my-checkpoint examples
            """)
        { paths, model, device };
        cmd.SetAction(r => Test(r.GetValue(paths) ?? [], r.GetValue(model), r.GetValue(device)));
        return cmd;
    }

    enum Verdict { Pass, Fail, Error }

    sealed record Outcome(string File, Verdict Verdict, string Line, IReadOnlyList<string> Details);

    static int Test(string[] given, string? model, string? device)
    {
        ExperimentFiles.Device(device);   // a bad --device is a usage error before anything runs
        var roots = given.Length > 0 ? given : ["."];
        var files = new List<string>();
        foreach (var root in roots)
        {
            if (File.Exists(root)) files.Add(root);
            else if (Directory.Exists(root)) files.AddRange(Find(root));
            else throw new UsageException($"'{root}' is neither a file nor a folder");
        }
        if (files.Count == 0)
        {
            Console.Error.WriteLine($"lens: no .lens files under {string.Join(", ", roots)}");
            return CliRunner.Failed;
        }
        var outcomes = new Outcome[files.Count];
        var print = new object();
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var outcome = Run(files[i], model, device);
            outcomes[i] = outcome;
            lock (print)
            {
                Console.WriteLine(outcome.Line);
                foreach (var detail in outcome.Details) Console.WriteLine("    " + detail.Replace("\n", "\n    "));
            }
        });
        int passed = outcomes.Count(o => o.Verdict == Verdict.Pass);
        Console.WriteLine($"{passed} passed, {outcomes.Length - passed} failed");
        return passed == outcomes.Length ? CliRunner.Ok : CliRunner.Failed;
    }

    /// <summary>The .lens files under a folder, in path order, skipping hidden folders and build output.</summary>
    static IEnumerable<string> Find(string root) =>
        Directory.EnumerateFiles(root, "*.lens", SearchOption.AllDirectories)
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)
                .Any(part => part.StartsWith('.') && part.Length > 1 && part != ".." || part is "bin" or "obj"))
            .Order(StringComparer.Ordinal);

    static Outcome Run(string file, string? model, string? device)
    {
        var clock = Stopwatch.StartNew();
        string Took() => $"{clock.Elapsed.TotalSeconds:0.0} s";
        Outcome Error(string message) => new(file, Verdict.Error, $"ERROR {file} ({Took()})", [message]);
        string text;
        Script script;
        try
        {
            text = File.ReadAllText(file);
            script = Parser.Parse(text, file);
        }
        catch (DslParseException e) { return Error(e.Message); }
        catch (IOException e) { return Error($"cannot read {file}: {e.Message}"); }
        ExperimentState final;
        try
        {
            using var environment = ExperimentFiles.Environment(file, text, model, device, null);
            final = Pipeline.FromScript(script).Execute(ExperimentState.Start(environment));
        }
        catch (ExperimentCheckException e) { return Error(e.Message); }
        catch (ExperimentRunException e) { return Error(e.Message); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException
            or KeyNotFoundException or NotSupportedException
                                      || e.GetType().Namespace?.StartsWith("Lens", StringComparison.Ordinal) == true)
        {
            return Error($"{file}: {e.Message}");
        }
        var failures = ExpectStages.Failures(final);
        int count = ExpectStages.Count(final);
        var expectations = count == 0 ? "no expectations" : $"{count} expectation{(count == 1 ? "" : "s")}";
        return failures.Count == 0
            ? new Outcome(file, Verdict.Pass, $"PASS  {file} ({expectations}, {Took()})", [])
            : new Outcome(file, Verdict.Fail, $"FAIL  {file} ({failures.Count} of {expectations} failed, {Took()})",
                failures.Select(f => f.ToString()).ToList());
    }
}
