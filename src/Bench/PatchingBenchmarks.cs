using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// An activation-patching sweep: for each (layer, head) cell, one forward of the corrupted input with
/// that head's hook_z replaced by its value on the clean input.
/// </summary>
public static class PatchingBenchmarks
{
    public static BenchRow Run(BenchContext ctx)
    {
        var model = ctx.Small;
        var cfg = model.Config;
        const long pos = 64;
        var cells = Enumerable.Range(0, cfg.NLayers)
            .SelectMany(l => Enumerable.Range(0, cfg.NHeads).Select(h => (Layer: l, Head: h))).Take(32).ToList();
        var name = $"patching sweep, {cells.Count} cells (hook_z of one head), {ctx.SmallLabel} 1x{pos}: per cell vs " +
            $"one forward";
        using var clean = BenchModels.Tokens(cfg, 1, pos, seed: 1);
        using var corrupted = BenchModels.Tokens(cfg, 1, pos, seed: 2);
        ctx.Options.Progress(name);
        using var cleanRun = model.RunWithCache(clean, HookedTransformer.NamesFilter("blocks.*.attn.hook_z"));
        var cache = cleanRun.Cache;

        void Sweep()
        {
            foreach (var (layer, head) in cells)
            {
                using var stored = cache[$"blocks.{layer}.attn.hook_z"].select(2, head);
                using var _ = model.Hooks(($"blocks.{layer}.attn.hook_z", (z, hp) =>
                {
                    using var target = z.select(2, head);
                    target.copy_(stored);
                    return null;
                }
                ));
                using var logits = model.Forward(corrupted);
            }
        }
        void Forwards() { for (int i = 0; i < cells.Count; i++) { using var l = model.Forward(corrupted); } }

        var once = Timing.Milliseconds(Sweep);
        var (m, b, ratio) = Timing.Paired(Sweep, Forwards, 1, ctx.Options.Repetitions(once, 3, 9));
        return BenchRow.FromSamples(name, m.Scale(1.0 / cells.Count), "ms/cell", b.Scale(1.0 / cells.Count), ratio,
            Target.Ratio("<=", 1.10));
    }
}
