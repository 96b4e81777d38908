using System.CommandLine;
using Lens.Dsl.Runtime;

namespace Lens.Cli.Commands;

/// <summary><c>lens check FILE.lens</c>: parses and checks an experiment without running it.</summary>
public static class CheckCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "the experiment (.lens file)" };
        var model =
            new Option<string?>("--model") { Description = "check against this model instead of the experiment's" };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N" };
        var cmd = new Command("check", """
            Parses an experiment and runs every check `lens run` runs before starting (it loads the model's
            configuration and tokenizer, but computes nothing). Prints each problem at FILE:LINE:COLUMN.
            Exit codes: 0 no problems, 1 problems found, 2 usage.
            Examples:
              lens check examples/induction.lens
              lens check my-study.lens --model ./models/my-model
            """)
        { file, model, device };
        cmd.SetAction(r => Check(r.GetValue(file)!, r.GetValue(model), r.GetValue(device)));
        return cmd;
    }

    static int Check(string path, string? model, string? device)
    {
        if (ExperimentFiles.Read(path) is not var (text, script)) return CliRunner.Failed;
        using var environment = ExperimentFiles.Environment(path, text, model, device, null);
        ExperimentPaths.Check(script.Statements, environment, [], problem => throw new UsageException(problem));
        var start = ExperimentState.Start(environment);
        var errors = Pipeline.FromScript(script).Check(start);
        if (errors.Count > 0)
        {
            ExperimentFiles.Report(new ExperimentCheckException(errors));
            return CliRunner.Failed;
        }
        Console.WriteLine($"{path}: ok ({script.Statements.Count} statements, " +
            $"model {ExperimentFiles.Named(start, script).ModelName})");
        if (environment.EstimatedPeak is { } peak)
            Console.WriteLine($"estimated peak memory: {Lens.MemoryEstimate.Describe(peak.Bytes)} "
                              + $"(line {peak.Statement.Span.Line}: `{environment.TextOf(peak.Statement)}`), "
                              + $"of {Lens.MemoryEstimate.Describe(Lens.MemoryEstimate.AvailableBytes())} available");
        foreach (var plan in environment.ChunkPlans.Values.OrderBy(p => p.Statement.Span.Line))
            Console.WriteLine(
                $"line {plan.Statement.Span.Line}: `{environment.TextOf(plan.Statement)}` {plan.Describe()}");
        return CliRunner.Ok;
    }
}
