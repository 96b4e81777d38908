namespace Lens.Bench;

/// <summary>The models a bench run measures, built once and shared by the row groups.</summary>
public sealed class BenchContext : IDisposable
{
    readonly Lazy<HookedTransformer> _small;
    readonly Lazy<PlainForward?> _plain;

    public BenchContext(BenchOptions options)
    {
        Options = options;
        Model = options.Model is string name ? ModelLoader.Load(name) : BenchModels.Build(BenchModels.Gpt2Small());
        Model.eval();
        // With a named model every row measures that model; otherwise the sweep and memory rows use a small one.
        _small =
            new Lazy<HookedTransformer>(() => options.Model is null ? BenchModels.Build(BenchModels.Small()) : Model);
        PlainUnsupported = PlainForward.Unsupported(Model.Config);
        _plain = new Lazy<PlainForward?>(() => PlainUnsupported is null ? new PlainForward(Model) : null);
    }

    public BenchOptions Options { get; }
    public HookedTransformer Model { get; }
    public HookedTransformer Small => _small.Value;
    public PlainForward? Plain => _plain.Value;
    public string? PlainUnsupported { get; }

    public string ModelLabel => Options.Model ?? Model.Config.ModelName;
    public string SmallLabel => Options.Model ?? Small.Config.ModelName;

    public void Dispose()
    {
        if (_plain.IsValueCreated) _plain.Value?.Dispose();
        if (_small.IsValueCreated && !ReferenceEquals(_small.Value, Model)) _small.Value.Dispose();
        Model.Dispose();
    }
}
