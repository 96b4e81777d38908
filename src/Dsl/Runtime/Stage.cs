namespace Lens.Dsl.Runtime;

/// <summary>
/// A statement is a stage of a pipeline: a pure function from state to state. These extensions run one
/// statement and compose statements into pipelines; since a stage is its statement, stages compare by
/// value, and the same experiment written as text or built in code gives equal stages.
/// </summary>
public static class Stage
{
    public static ExperimentState Apply(this Statement statement, ExperimentState state) =>
        StageRunner.Apply(statement, state);

    public static Pipeline Then(this Statement statement, Statement next) => new([statement, next]);

    public static Pipeline Then(this Statement statement, Pipeline next) => new([statement, .. next.Stages]);
}
