namespace Lens.Dsl.Runtime;

/// <summary>`model`, `seed`, `device`, `input` and `let`: they set up the state and produce no result.</summary>
internal static class SetupStages
{
    public static ExperimentState Model(ModelStatement s, ExperimentState state) =>
        s.Reference == state.ModelReference ? state : state with { ModelReference = s.Reference, Model = null };

    public static ExperimentState Seed(SeedStatement s, ExperimentState state) => state with { Seed = s.Seed };

    public static ExperimentState Use(UseStatement s, ExperimentState state) =>
        state with { Flags = state.Flags.Add(s.Flag) };

    public static ExperimentState Device(DeviceStatement s, ExperimentState state) =>
        state with { Device = DeviceSpec.Of(s), Model = null };

    public static ExperimentState Input(InputStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var input = Inputs.Resolve(s.Source, state.RequireModel().Model, state);
        return state with { Input = input, Inputs = state.Inputs.Add(input) };
    }

    public static ExperimentState Let(LetStatement s, ExperimentState state)
    {
        Binding binding;
        switch (s.Value)
        {
            case SelectionValue v:
                state = state.WithModel();
                binding = new SelectionBinding(v.Selection, HeadStages.Resolve(v.Selection, state));
                break;
            case InputValue v:
                state = state.WithModel();
                binding = new InputBinding(Inputs.Resolve(v.Source, state.RequireModel().Model, state));
                break;
            case PatternValue v:
                binding = new PatternBinding(v.Rows.Select(r => r.ToArray()).ToArray());
                break;
            default:
                throw new ArgumentException($"unknown let value {s.Value.GetType().Name}");
        }
        return state with { Bindings = state.Bindings.SetItem(s.Name, binding) };
    }
}
