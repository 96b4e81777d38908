using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Prepared ablation hooks: <see cref="Specs"/> to pass to <c>model.Hooks(...)</c> or
/// <c>model.RunWithHooks(...)</c>. Owns the reference activations of mean and resample ablations.
/// </summary>
public sealed class AblationHooks : IDisposable
{
    readonly List<Tensor> _owned = [];
    readonly List<HookSpec> _specs = [];

    AblationHooks() { }

    public IReadOnlyList<HookSpec> Specs => _specs;

    internal static AblationHooks Build(HookedTransformer model, IEnumerable<Ablation> ablations)
    {
        var built = new AblationHooks();
        try
        {
            foreach (var ablation in ablations) built.Add(model, ablation);
            return built;
        }
        catch { built.Dispose(); throw; }
    }

    void Add(HookedTransformer model, Ablation ablation)
    {
        var sites = ablation.Target.Sites(model);
        switch (ablation.Mode)
        {
            case AblationMode.Zero:
                foreach (var site in sites)
                    _specs.Add(HookSpec.Named(site.HookName, (x, _) =>
                    {
                        var replaced = x.clone();
                        using var part = site.Part(replaced);
                        part.zero_();
                        return replaced;
                    }));
                break;

            case AblationMode.Mean mean:
                foreach (var (site, activation) in sites.Zip(Reference(model, mean.ReferenceTokens, sites)))
                {
                    Tensor average;
                    using (var scope = NewDisposeScope())
                    {
                        average = site.Part(activation).mean([0L, 1L]).DetachFromDisposeScope();
                    }
                    activation.Dispose();
                    _owned.Add(average);
                    _specs.Add(HookSpec.Named(site.HookName, (x, _) =>
                    {
                        var replaced = x.clone();
                        using var part = site.Part(replaced);
                        part.copy_(average.to(x.dtype));
                        return replaced;
                    }));
                }
                break;

            case AblationMode.Resample resample:
                foreach (var (site, activation) in sites.Zip(Reference(model, resample.SourceTokens, sites)))
                {
                    Tensor source;
                    using (var scope = NewDisposeScope())
                    {
                        source = site.Part(activation).clone().DetachFromDisposeScope();
                    }
                    activation.Dispose();
                    _owned.Add(source);
                    ulong seed = resample.Seed;
                    _specs.Add(HookSpec.Named(site.HookName, (x, hook) =>
                    {
                        var replaced = x.clone();
                        using var part = site.Part(replaced);
                        if (part.shape[1] != source.shape[1])
                            throw new ArgumentException($"resample ablation at {hook.Name}: the source input " +
                                $"has {source.shape[1]} positions but the run has {part.shape[1]}");
                        using var rows = tensor(ResampleRows(seed, part.shape[0], source.shape[0]),
                            dtype: ScalarType.Int64, device: source.device);
                        using var drawn = source.index_select(0, rows);
                        part.copy_(drawn.to(x.dtype));
                        return replaced;
                    }));
                }
                break;

            default:
                throw new ArgumentException($"unknown ablation mode {ablation.Mode}");
        }
    }

    /// <summary>The source row of each example of a resample ablation: SplitMix64(seed).NextBelow(sourceRows), in
    /// example order.</summary>
    public static long[] ResampleRows(ulong seed, long examples, long sourceRows)
    {
        var rng = new SplitMix64(seed);
        var rows = new long[examples];
        for (long b = 0; b < examples; b++) rows[b] = rng.NextBelow(sourceRows);
        return rows;
    }

    /// <summary>The activations at the sites' hook points on a reference input (owned by the caller).</summary>
    static List<Tensor> Reference(HookedTransformer model, Tensor tokens, IReadOnlyList<AblationTarget.Site> sites)
    {
        var names = sites.Select(s => s.HookName).ToHashSet();
        using var run = model.RunWithCache(tokens, ReturnType.None, names.Contains);
        return sites.Select(s => run.Cache[s.HookName].clone().DetachFromDisposeScope()).ToList();
    }

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        _specs.Clear();
    }
}
