using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Lens.Dsl.Runtime;

namespace Lens.Cli.Commands;

/// <summary>
/// <c>lens diff A.json B.json [--tolerance T]</c>: compares two run records (lens run --json) statement by statement
/// and cell by cell, and says what changed beyond the tolerance, and what differs in how they were made.
/// </summary>
public static class DiffCommand
{
    public const double DefaultTolerance = 1e-6;

    public static Command Create()
    {
        var before = new Argument<string>("before") { Description = "the first run record (lens run --json)" };
        var after = new Argument<string>("after") { Description = "the second run record" };
        var tolerance = new Option<double>("--tolerance")
        {
            Description = $"numbers closer than this are the same " +
                $"(default {DefaultTolerance.ToString(CultureInfo.InvariantCulture)})", DefaultValueFactory =
                    _ => DefaultTolerance
        };
        var cmd = new Command("diff", """
            Compares two run records written by `lens run --json`. Results are matched by their line and
            statement text; for each, every cell (a head's score, a loss, a patched run's metric, a summary
            number, an expectation's verdict) that changed by more than the tolerance is listed as
            statement, cell, before → after, as are results only one record has. Also reported: changes of
            the model (name, weights sha256), the inputs, the files read and their sha256, and of the Lens
            version and commit, TorchSharp and libtorch versions, thread count, CPU and OS, which explain them.
            Exit codes: 0 nothing changed beyond the tolerance (the machine may differ), 1 something did, 2 usage.
            Examples:
              lens diff before.json after.json
              lens diff main.json branch.json --tolerance 1e-4
            """)
        { before, after, tolerance };
        cmd.SetAction(r => Diff(r.GetValue(before)!, r.GetValue(after)!, r.GetValue(tolerance)));
        return cmd;
    }

    static JsonDocument Load(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"run record '{path}' not found");
        try
        {
            var doc = JsonDocument.Parse(File.ReadAllText(path));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("results", out _))
                throw new UsageException($"'{path}' is not a run record (lens run --json): it has no \"results\"");
            return doc;
        }
        catch (JsonException e) { throw new UsageException($"'{path}' is not JSON: {e.Message}"); }
    }

    static int Diff(string beforePath, string afterPath, double tolerance)
    {
        if (!(tolerance >= 0))
            throw new UsageException(
                $"--tolerance must be at least 0, not {tolerance.ToString(CultureInfo.InvariantCulture)}");
        using var beforeDoc = Load(beforePath);
        using var afterDoc = Load(afterPath);
        var diff = RunRecordDiff.Compare(beforeDoc.RootElement, afterDoc.RootElement, tolerance);
        Console.WriteLine(
            $"lens diff {beforePath} {afterPath} (tolerance {tolerance.ToString("G", CultureInfo.InvariantCulture)})");
        foreach (var line in diff.Context) Console.WriteLine("  " + line);
        foreach (var line in diff.Changes) Console.WriteLine(line);
        if (diff.Changes.Count == 0)
        {
            Console.WriteLine($"no differences beyond the tolerance in {diff.Compared} results");
            return CliRunner.Ok;
        }
        Console.WriteLine($"{diff.ChangedCells} cell{(diff.ChangedCells == 1 ? "" : "s")} changed "
                          + $"in {diff.ChangedResults} of {diff.Compared} results"
                          + (diff.Changes.Count > diff.ChangedCells
                              ? $"; {diff.Changes.Count - diff.ChangedCells} other changes"
                              : ""));
        return CliRunner.Failed;
    }
}
