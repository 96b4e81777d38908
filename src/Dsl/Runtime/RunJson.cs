using System.Reflection;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Lens.Dsl.Runtime;

/// <summary>
/// The JSON record of a run (layout: docs/run-result.schema.json): the Lens version, when it ran, the
/// experiment (file, text and AST), the model (name and sha256 of its weights), seed and device, every
/// input as token ids and strings, every intervention as AST JSON, and a `results` array with one entry
/// per result-producing statement. Everything but `created` is a function of the experiment, the model
/// and the machine's arithmetic, so two runs give byte-identical files apart from that line.
/// </summary>
public static class RunJson
{
    public static string LensVersion =>
        typeof(HookedTransformer)
            .Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(HookedTransformer).Assembly.GetName().Version?.ToString() ?? "unknown";

    public static string Write(ExperimentState state, Script? experiment = null, DateTimeOffset? created = null)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream,
            new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            var env = state.Environment;
            json.WriteStartObject();
            json.WriteString("lens_version", LensVersion);
            json.WriteString("created",
                (created ?? DateTimeOffset.UtcNow).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
            Provenance.Write(json, env);
            json.WriteStartObject("experiment");
            json.WriteString("file", env.FileName);
            if (env.SourceText is null) json.WriteNull("text"); else json.WriteString("text", env.SourceText);
            if (experiment is not null)
            {
                json.WritePropertyName("ast");
                json.WriteRawValue(AstJson.Serialize(experiment));
            }
            json.WriteEndObject();
            WriteModel(json, state.Model);
            json.WriteNumber("seed", state.Seed);
            json.WriteStartArray("config_flags");
            foreach (var flag in state.Flags) json.WriteStringValue(ExperimentState.FlagName(flag));
            json.WriteEndArray();
            json.WriteString("device", state.EffectiveDevice.ToString());
            json.WriteStartArray("inputs");
            foreach (var input in state.Inputs)
            {
                json.WriteStartObject();
                json.WriteString("source", Printer.Print(input.Source));
                ResultValue.WriteTokens(json, input.Ids, input.Tokens);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteStartArray("interventions");
            foreach (var intervention in state.InterventionLog)
            {
                json.WriteStartObject();
                json.WriteString("statement", intervention.Text);
                json.WriteNumber("line", intervention.Source.Span.Line);
                json.WriteBoolean("scoped", intervention.Source.IsScoped);
                ResultValue.WriteStrings(json, "targets", intervention.TargetLabels);
                if (intervention.Reference is null) json.WriteNull("reference");
                else json.WriteString("reference", Printer.Print(intervention.Reference.Source));
                json.WritePropertyName("ast");
                json.WriteRawValue(AstJson.Serialize(intervention.Source.Intervention));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteStartArray("results");
            foreach (var result in state.Results) WriteResult(json, result);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    static void WriteModel(Utf8JsonWriter json, ModelHandle? model)
    {
        if (model is null) { json.WriteNull("model"); return; }
        var cfg = model.Config;
        json.WriteStartObject("model");
        json.WriteString("name", model.Name);
        json.WriteString("weights_sha256", model.WeightsSha256);
        json.WriteNumber("n_layers", cfg.NLayers);
        json.WriteNumber("n_heads", cfg.NHeads);
        json.WriteNumber("d_model", cfg.DModel);
        json.WriteNumber("d_vocab", cfg.DVocab);
        json.WriteNumber("n_ctx", cfg.NCtx);
        json.WriteEndObject();
    }

    static void WriteResult(Utf8JsonWriter json, ExperimentResult result)
    {
        json.WriteStartObject();
        json.WriteString("statement", result.Text);
        json.WriteNumber("line", result.Line);
        json.WriteString("command", result.Command);
        json.WriteString("kind", result.Value.Kind);
        json.WriteString("title", result.Value.Title);
        ResultValue.WriteStrings(json, "interventions", result.Interventions);
        result.Value.WriteFields(json);
        json.WriteStartObject("summary");
        foreach (var (name, value) in result.Value.Summary)
        {
            json.WritePropertyName(name);
            Numbers.Write(json, value);
        }
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
