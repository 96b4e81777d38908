using System.Collections.Immutable;

namespace Lens.Dsl.Runtime;

/// <summary>
/// Everything an experiment has set up and found so far, immutable: each <see cref="Stage"/> takes a
/// state and returns a new one. The model handle, seed and device; the current input and every input
/// the experiment set (as run, for the record); the let-bindings; the interventions in force, as data;
/// the latest stripe scores per kind (what `where` reads); and the results in order.
/// </summary>
public sealed record ExperimentState
{
    public required ExperimentEnvironment Environment { get; init; }

    /// <summary>The model; null until the first statement that needs one loads it.</summary>
    public ModelHandle? Model { get; init; }

    /// <summary>The reference the experiment's `model` statement gave (null: the command line's, or the
    /// default).</summary>
    public string? ModelReference { get; init; }

    public long Seed { get; init; }

    /// <summary>The config flags `use` turned on; stages set them on the model while they run (see
    /// <see cref="StagePass"/>).</summary>
    public ImmutableSortedSet<ModelFlag> Flags { get; init; } = [];

    /// <summary>TransformerLens's name of a flag: use_attn_result, ...</summary>
    public static string FlagName(ModelFlag flag) => "use_" + Keywords.ModelFlags.Text(flag);

    public DeviceSpec Device { get; init; } = DeviceSpec.Cpu;

    public ExperimentInput? Input { get; init; }

    /// <summary>Every input the experiment set with `input`, in order.</summary>
    public ImmutableList<ExperimentInput> Inputs { get; init; } = [];

    public ImmutableDictionary<string, Binding> Bindings { get; init; } = ImmutableDictionary<string, Binding>.Empty;

    public ImmutableList<ActiveIntervention> Interventions { get; init; } = [];

    /// <summary>Every intervention the experiment applied, in order (a block's too), for the record.</summary>
    public ImmutableList<ActiveIntervention> InterventionLog { get; init; } = [];

    /// <summary>The SAEs `sae load` spliced in and in force, in load order (feature statements use the last).</summary>
    public ImmutableList<ActiveSae> Saes { get; init; } = [];

    /// <summary>The feature edits in force (`ablate feature N`, `steer feature N ...`), applied in order.</summary>
    public ImmutableList<FeatureEdit> FeatureEdits { get; init; } = [];

    public ImmutableDictionary<ScoreKind, LayerHeadValue> Scores { get; init; } =
        ImmutableDictionary<ScoreKind, LayerHeadValue>.Empty;

    public ImmutableList<ExperimentResult> Results { get; init; } = [];

    /// <summary>The most recent result in scope per expectation key (<see cref="ExpectTargets.KeyOf"/>): what `expect`
    /// reads.</summary>
    public ImmutableDictionary<string, ExperimentResult> Latest { get; init; } =
        ImmutableDictionary<string, ExperimentResult>.Empty;

    /// <summary>A fresh state: seed 0, cpu, no model loaded yet.</summary>
    public static ExperimentState Start(ExperimentEnvironment environment) => new() { Environment = environment };

    /// <summary>The model name the experiment runs on: the command line's, else the experiment's, else the
    /// default.</summary>
    public string ModelName => Environment.ModelOverride ?? ModelReference ?? ExperimentEnvironment.DefaultModel;

    /// <summary>The device the experiment runs on: the command line's, else the experiment's.</summary>
    public DeviceSpec EffectiveDevice => Environment.DeviceOverride ?? Device;

    /// <summary>
    /// Where the model is loaded from: a relative path in the experiment is relative to the experiment's
    /// folder (one on the command line, to the working directory); names and hub ids are as written.
    /// </summary>
    public string ModelLocation =>
        Environment.ModelOverride is null && ModelReference is string written
            && new ModelStatement(written).Kind == ModelReferenceKind.Path
            ? Environment.ReadPath(written)
            : ModelName;

    /// <summary>This state with its model loaded (a no-op when it already is).</summary>
    public ExperimentState WithModel() =>
        Model is not null
            ? this
            : this with { Model = Environment.LoadModel(ModelName, ModelLocation, EffectiveDevice) };

    public ModelHandle RequireModel() =>
        Model ?? throw new InvalidOperationException("no model is loaded (internal: call WithModel first)");

    public ExperimentInput RequireInput(string command) =>
        Input
            ?? throw new InvalidOperationException(
            $"'{command}' needs an input: add an `input ...` statement before it");

    /// <summary>This state with a result added (and reported to the environment's listener).</summary>
    public ExperimentState WithResult(Statement statement, ResultValue value)
    {
        var result = new ExperimentResult(statement, Environment.TextOf(statement), CommandWord(statement), value,
            Saes.Select(s => s.Text).Concat(Interventions.Select(i => i.Text)).Concat(FeatureEdits.Select(e => e.Text))
            .ToList());
        Environment.OnResult?.Invoke(result);
        return ExpectTargets.KeyOf(statement) is { } key
            ? this with { Results = Results.Add(result), Latest = Latest.SetItem(key, result) }
            : this with { Results = Results.Add(result) };
    }

    static string CommandWord(Statement statement)
    {
        var text = Printer.Print(statement);
        int space = text.IndexOf(' ');
        return space < 0 ? text : text[..space];
    }
}
