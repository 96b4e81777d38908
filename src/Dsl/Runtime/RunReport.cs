using Lens.Visualization;

namespace Lens.Dsl.Runtime;

/// <summary>One self-contained HTML page for a run: the experiment text, the model, and every result as tables and
/// figures, in order.</summary>
public static class RunReport
{
    public static Report Build(ExperimentState state, Script? experiment = null, string? title = null)
    {
        var env = state.Environment;
        var report = new Report(title ?? $"Lens experiment: {Path.GetFileName(env.FileName)}");
        if (state.Model is { } model)
            report.SetModel($"{model.Name} ({model.Config.NLayers} layers × {model.Config.NHeads} heads, " +
                $"d_model {model.Config.DModel}; weights sha256 {model.WeightsSha256[..16]}…)");
        report.SetSource(env.SourceText ?? (experiment is null ? "" : Printer.Print(experiment)), env.FileName);
        foreach (var result in state.Results)
        {
            var heading = (result.Line > 0 ? $"line {result.Line}: " : "") + result.Text;
            if (result.Interventions.Count > 0) heading += $" [with {string.Join("; ", result.Interventions)}]";
            (result.Value with { Title = heading + (result.Value.Title.Length > 0 ? " — " + result.Value.Title : "") })
                .AddTo(report);
        }
        if (state.Results.Count == 0) report.AddText("The experiment produced no results.");
        return report;
    }
}
