using System.CommandLine;
using Lens.Dsl;
using Lens.Dsl.Runtime;
using Lens.IO;

namespace Lens.Cli.Commands;

/// <summary><c>lens run FILE.lens</c>: checks an experiment, runs it, prints each result, and writes the JSON record
/// and HTML report.</summary>
public static class RunCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "the experiment (.lens file)" };
        var json = new Option<string?>("--json")
        {
            Description = "write every result as JSON (layout: docs/run-result.schema.json)"
        };
        var html = new Option<string?>("--html")
        {
            Description = "write one self-contained HTML report: the experiment, the model, every table and figure"
        };
        var model = new Option<string?>("--model")
        {
            Description = $"run on this model instead of the experiment's (default when neither names " +
                $"one: {ExperimentEnvironment.DefaultModel})"
        };
        var device = new Option<string?>("--device")
        {
            Description = "cpu, cuda or cuda:N (instead of the experiment's `device`)"
        };
        var cmd = new Command("run", """
            Runs an experiment written in the Lens experiment language (see src/Dsl/LANGUAGE.md). Every
            statement is checked first (layers and heads in range, single tokens, known hooks, inputs and
            files present); with any problem nothing runs and each is reported at FILE:LINE:COLUMN.
            Results are printed as they come: layer × head tables, losses, predictions, circuits, patches.
            `expect` statements check claims about the results; every statement still runs, and each
            expectation that does not hold is reported at FILE:LINE:COLUMN at the end (exit code 1).
            Exit codes: 0 success, 1 a mistake in the experiment, a failure while running it or a failed
            expectation, 2 usage.
            Examples:
              lens run examples/induction.lens
              lens run examples/patching.lens --json out/patching.json --html out/patching.html
              lens run my-study.lens --model ./models/my-model --device cpu
            """)
        { file, json, html, model, device };
        cmd.SetAction(r =>
            Run(r.GetValue(file)!, r.GetValue(json), r.GetValue(html), r.GetValue(model), r.GetValue(device)));
        return cmd;
    }

    static int Run(string path, string? jsonPath, string? htmlPath, string? model, string? device)
    {
        if (ExperimentFiles.Read(path) is not var (text, script)) return CliRunner.Failed;
        using var environment = ExperimentFiles.Environment(path, text, model, device,
            result => Console.WriteLine(TerminalText.Visible(result.ToText())));
        List<(string, string)> outputs = [];
        if (jsonPath is not null) outputs.Add(("--json", jsonPath));
        if (htmlPath is not null) outputs.Add(("--html", htmlPath));
        ExperimentPaths.Check(script.Statements, environment, outputs, problem => throw new UsageException(problem));
        var start = ExperimentState.Start(environment);
        var pipeline = Pipeline.FromScript(script);
        ExperimentState final;
        try
        {
            var errors = pipeline.Check(start);
            if (errors.Count > 0) throw new ExperimentCheckException(errors);
            var loaded = ExperimentFiles.Named(start, script).WithModel();
            var cfg = loaded.RequireModel().Config;
            Console.WriteLine($"lens run {path}: model {loaded.ModelName} ({cfg.NLayers} layers × {cfg.NHeads} " +
                $"heads, d_model {cfg.DModel}), {script.Statements.Count} statements\n");
            final = pipeline.Apply(start);
        }
        catch (ExperimentCheckException e) { ExperimentFiles.Report(e); return CliRunner.Failed; }
        catch (ExperimentRunException e) { Console.Error.WriteLine(e.Message); return CliRunner.Failed; }
        if (jsonPath is not null) Write(jsonPath, RunJson.Write(final, script), "JSON");
        if (htmlPath is not null)
        {
            RunReport.Build(final, script).Save(htmlPath);
            Console.WriteLine($"wrote the HTML report to {htmlPath}");
        }
        return ExperimentFiles.ReportExpectations(final) ? CliRunner.Ok : CliRunner.Failed;
    }

    static void Write(string path, string content, string what)
    {
        AtomicFile.WriteAllText(path, content);
        Console.WriteLine($"wrote the {what} record to {path}");
    }
}
