namespace Lens.Dsl.Runtime;

/// <summary>
/// One step of an experiment: a statement compiled to a pure function from state to state. A stage is
/// its statement (the AST node it came from, or that code built), so stages compare by value: the
/// same experiment written as text or built in code gives equal stages.
/// </summary>
public sealed record Stage(Statement Statement)
{
    public ExperimentState Apply(ExperimentState state) => StageRunner.Apply(Statement, state);

    public Pipeline Then(Stage next) => new([this, next]);

    public Pipeline Then(Pipeline next) => new([this, .. next.Stages]);

    /// <summary>The stage as experiment text (an `ablate` with a block spans several lines).</summary>
    public string ToText() => Printer.Print(Statement);

    /// <summary>The stage's statement as JSON (<see cref="AstJson"/>).</summary>
    public string ToJson() => AstJson.Serialize(Statement);

    public override string ToString() => ToText();
}
