using Lens.Components;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// Generation with the key-value cache: time per new token late in the context against early, and
/// greedy output with the cache against output recomputed from scratch each step.
/// The timing is of the cached forward step, Forward(newToken, Logits, false, kvCache), which is what
/// model.Generate runs per token; the output check runs model.Generate with and without the cache.
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
        var (m, b, ratio) = Timing.Paired(() => lateToken = Step(model, lateCache, lateToken),
            () => earlyToken = Step(model, earlyCache, earlyToken), 1, reps);
        lateToken.Dispose(); earlyToken.Dispose();
        yield return BenchRow.FromSamples($"kv-cached step: ms per new token at position {late}, vs at {early}", m,
            "ms/token", b, ratio, Target.Ratio("<=", 2.0));

        ctx.Options.Progress("cached vs uncached greedy output");
        var (mismatches, generated, maxDiff) =
            CompareWithUncached(model, prompt: 16, steps: ctx.Options.Quick ? 8 : 16);
        var lateDiff = LateStepDifference(model, late);
        yield return new BenchRow($"model.Generate greedy, kv cache vs none ({generated} tokens)", mismatches,
            mismatches, mismatches, "tokens differing", null, null, Target.Value("==", 0),
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

    /// <summary>model.Generate, greedy, with and without the key-value cache: tokens that differ, and the largest logit
    /// gap of the cached steps.</summary>
    static (int Mismatches, int Steps, double MaxDiff) CompareWithUncached(HookedTransformer model, long prompt,
        int steps)
    {
        using var scope = NewDisposeScope();
        var tokens = BenchModels.Tokens(model.Config, 1, prompt, seed: 9);
        var cached = model.Generate(tokens, steps,
            new GenerationOptions { Greedy = true, StopAtEos = false, UseKvCache = true });
        var uncached = model.Generate(tokens, steps,
            new GenerationOptions { Greedy = true, StopAtEos = false, UseKvCache = false });
        int mismatches = (int)cached.ne(uncached).sum().item<long>();
        // The logits behind each cached step against the full forward of the same sequence.
        using var cache = new KeyValueCache(model.Config.NLayers);
        var stepped = model.Forward(cached.narrow(1, 0, prompt), ReturnType.Logits, false, cache).Logits!;
        var parts = new List<Tensor> { stepped };
        for (long i = prompt; i < cached.shape[1]; i++)
            parts.Add(model.Forward(cached.narrow(1, i, 1), ReturnType.Logits, false, cache).Logits!);
        var full = model.Forward(cached);
        var maxDiff = (cat(parts, 1) - full).abs().max().item<float>();
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
