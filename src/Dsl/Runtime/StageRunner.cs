namespace Lens.Dsl.Runtime;

/// <summary>
/// Runs one statement: the switch from each statement record to the stage function of its command
/// family. A failure that is the experiment's (not Lens's) becomes an <see cref="ExperimentRunException"/>
/// naming the statement's location.
/// </summary>
public static class StageRunner
{
    public static ExperimentState Apply(Statement statement, ExperimentState state)
    {
        try
        {
            return statement switch
            {
                ModelStatement s => SetupStages.Model(s, state),
                SeedStatement s => SetupStages.Seed(s, state),
                UseStatement s => SetupStages.Use(s, state),
                DeviceStatement s => SetupStages.Device(s, state),
                InputStatement s => SetupStages.Input(s, state),
                LetStatement s => SetupStages.Let(s, state),
                ScoreStatement s => HeadStages.Score(s, state),
                DetectStatement s => HeadStages.Detect(s, state),
                HeadsStatement s => HeadStages.Heads(s, state),
                InterventionStatement s => InterventionStages.Ablate(s, state),
                RunStatement s => ForwardStages.Run(s, state),
                LossStatement s => ForwardStages.Loss(s, state),
                LogitsStatement s => ForwardStages.Logits(s, state),
                PredictStatement s => ForwardStages.Predict(s, state),
                GenerateStatement s => ForwardStages.Generate(s, state),
                CircuitStatement s => CircuitStages.Circuit(s, state),
                ComposeStatement s => CircuitStages.Compose(s, state),
                AttributeStatement s => AttributionStages.Attribute(s, state),
                LogitLensStatement s => AttributionStages.LogitLens(s, state),
                PatchStatement s => PatchStages.Patch(s, state),
                AttributePatchStatement s => AttributePatchStages.AttributePatch(s, state),
                ShowStatement s => OutputStages.Show(s, state),
                CacheStatement s => OutputStages.Cache(s, state),
                PrintStatement s => OutputStages.Print(s, state),
                ExpectStatement s => ExpectStages.Expect(s, state),
                ExpectTextStatement s => ExpectStages.ExpectText(s, state),
                SaeLoadStatement s => SaeStages.Load(s, state),
                SaeMetricsStatement s => SaeStages.Metrics(s, state),
                FeaturesTopStatement s => SaeStages.Top(s, state),
                FeatureLogitsStatement s => SaeStages.Logits(s, state),
                SteerStatement s => SaeStages.Steer(s, state),
                _ => throw new ArgumentException($"no stage runs {statement.GetType().Name}"),
            };
        }
        catch (Exception e) when (e is not ExperimentRunException && IsExperimentError(e))
        {
            throw new ExperimentRunException(SemanticError.At(state.Environment, statement, Validator.Plain(e)), e);
        }
    }

    static bool IsExperimentError(Exception e) =>
        e is ArgumentException or InvalidOperationException or IOException or KeyNotFoundException
            or UnauthorizedAccessException
            or CheckpointException or Lens.IO.SafetensorsException or NotSupportedException or Lens.Sae.SaeException;
}
