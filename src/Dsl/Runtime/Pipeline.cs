namespace Lens.Dsl.Runtime;

/// <summary>
/// An experiment as a sequence of statements (its stages, see <see cref="Stage"/>), built from text
/// (<see cref="Parse"/>) or in code
/// (the builders in Pipeline.Builders.cs, composed with <see cref="Then(Pipeline)"/> or
/// <see cref="Sequence"/>). Pipelines compare by value, print back to experiment text and serialise to
/// JSON. <see cref="Execute(ExperimentState)"/> checks every statement first and runs nothing when a
/// check fails.
/// </summary>
public sealed partial record Pipeline(NodeList<Statement> Stages)
{
    public static readonly Pipeline Empty = new(NodeList<Statement>.Empty);

    public Pipeline Then(Pipeline next) => new([.. Stages, .. next.Stages]);

    public Pipeline Then(Statement next) => new([.. Stages, next]);

    public static Pipeline Sequence(params Pipeline[] parts) => new([.. parts.SelectMany(p => p.Stages)]);

    public static Pipeline Of(Statement statement) => new([statement]);

    public static Pipeline FromScript(Script script) => new(script.Statements);

    /// <summary>Parses experiment text (<see cref="Parser.Parse"/>; a mistake throws
    /// <see cref="DslParseException"/>).</summary>
    public static Pipeline Parse(string text, string fileName = "<text>") => FromScript(Parser.Parse(text, fileName));

    public Script ToScript() => new(Stages);

    /// <summary>Canonical experiment text: parsing it gives back an equal pipeline.</summary>
    public string ToText() => Printer.Print(ToScript());

    public string ToJson(bool indented = false) => AstJson.Serialize(ToScript(), indented);

    /// <summary>The semantic checks (<see cref="Validator"/>) against a starting state; empty when the pipeline may
    /// run.</summary>
    public IReadOnlyList<SemanticError> Check(ExperimentState start) => Validator.Check(ToScript().Statements, start);

    /// <summary>Checks, then runs every stage in order; throws <see cref="ExperimentCheckException"/> (nothing ran) or
    /// <see cref="ExperimentRunException"/>.</summary>
    public ExperimentState Execute(ExperimentState start)
    {
        var errors = Check(start);
        if (errors.Count > 0) throw new ExperimentCheckException(errors);
        return Apply(start);
    }

    /// <summary>Runs in a fresh state of the environment.</summary>
    public ExperimentState Execute(ExperimentEnvironment environment) => Execute(ExperimentState.Start(environment));

    /// <summary>Runs every stage in order without the checks.</summary>
    public ExperimentState Apply(ExperimentState state) => Stages.Aggregate(state, (s, stage) => stage.Apply(s));

    public override string ToString() => ToText();
}
