using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// A heads × positions activation-patching sweep (every head's hook_z at every position) on a 1×20 prompt at
/// GPT-2 small's shape, batched (<see cref="BatchedPatching"/>: the cells of a layer as rows of a few forwards
/// from that layer, only the logits the metric reads), per cell, against the sweep it replaces: one forward
/// per cell (TransformerLens's way; a sample of cells, every cell of that sweep costs the same). The note
/// gives the cost per cell as a fraction of a plain batch-1 forward.
/// </summary>
public static class BatchedPatchingBenchmarks
{
    public static BenchRow Run(BenchContext ctx)
    {
        var model = ctx.Model;
        var cfg = model.Config;
        const long pos = 20;
        long cells = (long)cfg.NLayers * cfg.NHeads * pos;
        var name = $"batched patching sweep, heads x positions ({cells} cells, hook_z), {ctx.ModelLabel} 1x{pos}: " +
            $"per cell vs one forward per cell (<= 0.25 of a forward)";
        ctx.Options.Progress(name);
        using var clean = BenchModels.Tokens(cfg, 1, pos, seed: 1);
        using var corrupted = BenchModels.Tokens(cfg, 1, pos, seed: 2);
        using var cleanRun = model.RunWithCache(clean, HookedTransformer.NamesFilter("blocks.*.attn.hook_z"));
        using var correct = tensor(1L);
        using var incorrect = tensor(2L);
        var metric = LogitDifference.Metric(correct, incorrect);
        var options = new PatchingOptions { MetricReads = LogitDifference.Reads(correct, incorrect) };

        void Batched() { using var r = Patching.AttnHeadOutByPos(model, corrupted, cleanRun.Cache, metric, options); }

        // The reference sweep, cell by cell: a sample spread over layers, heads and positions.
        var sample = Enumerable.Range(0, 2 * cfg.NLayers)
            .Select(i => (Layer: i / 2, Head: (i * 5) % cfg.NHeads, Pos: (i * 7) % pos)).ToList();
        void OneCellPerForward()
        {
            foreach (var (layer, head, p) in sample)
            {
                using var scope = NewDisposeScope();
                var stored = cleanRun.Cache[$"blocks.{layer}.attn.hook_z"];
                Tensor? Patch(Tensor z, HookPoint hook)
                {
                    var patched = z.clone();
                    patched.select(1, p).select(1, head).copy_(stored.select(1, p).select(1, head));
                    return patched;
                }
                using var logits = model.RunWithHooks(corrupted, ($"blocks.{layer}.attn.hook_z", Patch));
                metric(logits);
            }
        }
        void Forwards() { foreach (var _ in sample) { using var l = model.Forward(corrupted); } }

        // Each repetition times the three back to back (the order rotating), so load from other processes hits them
        // alike. A sweep of 2,880 cells amortises its own warm-up; one forward warms the model for the others.
        using (model.Forward(corrupted)) { }
        int reps = ctx.Options.Quick ? 1 : 3;
        var batched = new List<double>();
        var reference = new List<double>();
        var forwards = new List<double>();
        for (int i = 0; i < reps; i++)
        {
            var order = new (Action Run, List<double> Into)[]
            {
                (Batched, batched), (OneCellPerForward, reference), (Forwards, forwards)
            };
            foreach (var (run, into) in order.Skip(i % 3).Concat(order.Take(i % 3))) into.Add(Timing.Milliseconds(run));
        }
        var perCell = new Samples(batched.Select(t => t / cells));
        var referencePerCell = new Samples(reference.Select(t => t / sample.Count));
        double perCellRatio = Samples.MedianOf(batched.Zip(reference, (x, y) => x / cells / (y / sample.Count)));
        double ofForward = Samples.MedianOf(batched.Zip(forwards, (x, y) => x / cells / (y / sample.Count)));
        double referenceOfForward = Samples.MedianOf(reference.Zip(forwards, (x, y) => x / y));
        var note = $"{ofForward:0.###} of a batch-1 forward per cell ({Samples.MedianOf(forwards) / sample.Count:0.#} "
                   + $"ms); one cell per forward: {referenceOfForward:0.##} forwards per cell; "
                   + $"{BatchedPatching.RowsPerForward(cfg, 1, pos, options.MetricReads, options.MemoryBudgetBytes)} "
                   + $"cells fit one forward's memory budget";
        return BenchRow.FromSamples(name, perCell, "ms/cell", referencePerCell, perCellRatio, Target.Ratio("<=", 0.25),
            note);
    }
}
