using Lens.Dsl;
using Lens.Dsl.Runtime;

namespace Lens.Cli.Commands;

/// <summary>What `lens run` and `lens check` share: reading an experiment file into a parsed script and its
/// environment.</summary>
static class ExperimentFiles
{
    /// <summary>The experiment's text and script; a missing file or a syntax error is written to stderr and gives
    /// null.</summary>
    public static (string Text, Script Script)? Read(string path)
    {
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"lens: experiment file '{path}' not found");
            return null;
        }
        string text;
        try { text = Lens.IO.BoundedText.Read(path, 4L * Limits.SourceCharacters, "experiment file"); }
        catch (IOException e)
        {
            Console.Error.WriteLine($"lens: {TerminalText.Visible(e.Message)}");
            return null;
        }
        try { return (text, Parser.Parse(text, path)); }
        catch (DslParseException e)
        {
            Console.Error.WriteLine(e.Message);
            return null;
        }
    }

    public static ExperimentEnvironment Environment(string path, string text, string? model, string? device,
        Action<ExperimentResult>? onResult) => new()
        {
            FileName = path,
            SourceText = text,
            ReadDirectory = Path.GetDirectoryName(Path.GetFullPath(path))!,
            WriteDirectory = Directory.GetCurrentDirectory(),
            ModelOverride = model,
            DeviceOverride = Device(device),
            OnResult = onResult,
        };

    /// <summary>--device: cpu, cuda or cuda:N (anything else is a usage error).</summary>
    public static DeviceSpec? Device(string? text)
    {
        if (text is null) return null;
        try { return DeviceSpec.Parse(text); }
        catch (DslParseException) { throw new UsageException($"--device must be cpu, cuda or cuda:N, not '{text}'"); }
    }

    /// <summary>The state an experiment starts in, naming the model its first `model` statement gives (for messages
    /// before it runs).</summary>
    public static ExperimentState Named(ExperimentState start, Script script) =>
        start with { ModelReference = script.Statements.OfType<ModelStatement>().FirstOrDefault()?.Reference };

    /// <summary>
    /// Writes each expectation of a run that did not hold to stderr, located, then a count; true when every one held
    /// (or there were none).
    /// </summary>
    public static bool ReportExpectations(ExperimentState final)
    {
        var failures = ExpectStages.Failures(final);
        int count = ExpectStages.Count(final);
        if (failures.Count == 0)
        {
            if (count > 0) Console.WriteLine($"{count} expectation{(count == 1 ? "" : "s")}: all held");
            return true;
        }
        foreach (var failure in failures) Console.Error.WriteLine(failure);
        Console.Error.WriteLine($"{failures.Count} of {count} expectation{(count == 1 ? "" : "s")} failed.");
        return false;
    }

    /// <summary>Writes the checks' problems to stderr: each with its location, then a count.</summary>
    public static void Report(ExperimentCheckException e)
    {
        foreach (var error in e.Errors) Console.Error.WriteLine(error);
        Console.Error.WriteLine($"{e.Errors.Count} problem{(e.Errors.Count == 1 ? "" : "s")} found; nothing was run.");
    }
}
