using Lens.Components;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// Generation with the key-value cache: time per new token late in the context against early, and
/// greedy output with the cache against output recomputed from scratch each step.
/// (Benchmarks the cached forward step, Forward(newToken, Logits, false, kvCache), until model.Generate lands.)
/// </summary>
public static class GenerationBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        long late = Math.Min(ctx.Options.Quick ? 128 : 512, model.Config.NCtx - 64), early = 16;
        ctx.Options.Progress($"kv-cached step at position {late} vs {early}");
        using var lateCache = Prefill(model, late, out var lateToken);
        using var earlyCache = Prefill(model, early, out var earlyToken);
        var once = Timing.Milliseconds(() => lateToken = Step(model, lateCache, lateToken));
        int reps = Math.Min(ctx.Options.Repetitions(once, 5, 25), (int)(model.Config.NCtx - late - 2));
        var (m, b, ratio) = Timing.Paired(() => lateToken = Step(model, lateCache, lateToken), () => earlyToken = Step(model, earlyCache, earlyToken), 1, reps);
        lateToken.Dispose(); earlyToken.Dispose();
        yield return BenchRow.FromSamples($"kv-cached step: ms per new token at position {late}, vs at {early}", m, "ms/token", b, ratio, Target.Ratio("<=", 2.0));

        ctx.Options.Progress("cached vs uncached greedy output");
        var (mismatches, generated, maxDiff) = CompareWithUncached(model, prompt: 16, steps: ctx.Options.Quick ? 8 : 16);
        var lateDiff = LateStepDifference(model, late);
        yield return new BenchRow($"kv-cached greedy output vs uncached ({generated} tokens)", mismatches, mismatches, mismatches, "tokens differing",
            null, null, Target.Value("==", 0),
            $"max |Δlogit| {maxDiff:0.0e+0} over the steps; at position {late}: {lateDiff:0.0e+0}");
    }

    static KeyValueCache Prefill(HookedTransformer model, long positions, out Tensor next)
    {
        var cache = new KeyValueCache(model.Config.NLayers);
        using var prompt = BenchModels.Tokens(model.Config, 1, positions, seed: 7);
        using var output = model.Forward(prompt, ReturnType.Logits, false, cache);
        next = Greedy(output.Logits!);
        return cache;
    }

    static Tensor Step(HookedTransformer model, KeyValueCache cache, Tensor token)
    {
        using var _ = token;
        using var output = model.Forward(token, ReturnType.Logits, false, cache);
        return Greedy(output.Logits!);
    }

    /// <summary>The argmax of the last position's logits as a [1, 1] token.</summary>
    static Tensor Greedy(Tensor logits)
    {
        using var last = logits.select(1, -1);
        return last.argmax(-1, keepdim: true);
    }

    static (int Mismatches, int Steps, double MaxDiff) CompareWithUncached(HookedTransformer model, long prompt, int steps)
    {
        using var scope = NewDisposeScope();
        var tokens = BenchModels.Tokens(model.Config, 1, prompt, seed: 9);
        using var cache = new KeyValueCache(model.Config.NLayers);
        var cachedInput = tokens;
        var uncached = tokens;
        int mismatches = 0;
        double maxDiff = 0;
        for (int i = 0; i < steps; i++)
        {
            var cachedLogits = model.Forward(cachedInput, ReturnType.Logits, false, cache).Logits!.select(1, -1);
            var fullLogits = model.Forward(uncached).select(1, -1);
            maxDiff = Math.Max(maxDiff, (cachedLogits - fullLogits).abs().max().item<float>());
            var a = cachedLogits.argmax(-1, keepdim: true);
            var b = fullLogits.argmax(-1, keepdim: true);
            if (a.item<long>() != b.item<long>()) mismatches++;
            cachedInput = a;
            uncached = cat([uncached, b], 1);
        }
        return (mismatches, steps, maxDiff);
    }

    /// <summary>|cached step − full forward| of the logits at one late position.</summary>
    static double LateStepDifference(HookedTransformer model, long position)
    {
        using var scope = NewDisposeScope();
        var tokens = BenchModels.Tokens(model.Config, 1, position + 1, seed: 11);
        using var cache = new KeyValueCache(model.Config.NLayers);
        model.Forward(tokens.narrow(1, 0, position), ReturnType.None, false, cache);
        var step = model.Forward(tokens.narrow(1, position, 1), ReturnType.Logits, false, cache).Logits!.select(1, -1);
        var full = model.Forward(tokens).select(1, -1);
        return (step - full).abs().max().item<float>();
    }
}
