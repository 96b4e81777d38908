using System.Runtime.InteropServices;
using Lens.Datasets;
using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>
/// <c>lens harvest</c>'s cost: tokens/s against the bare forward over the same batches (timed alternately), the peak
/// memory for a corpus 8× the throughput one against 2× (it must not grow with the corpus), and the output's size per
/// million
/// tokens in float16 against float32. The corpus is pre-tokenized random ids (an Arrow file), so the small model
/// needs no tokenizer and the rows measure the forward, the copy-out and the writing, not the packing.
/// </summary>
public static class HarvestBenchmarks
{
    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Small;
        int context = Math.Min(128, model.Config.NCtx), batch = 8, rows = ctx.Options.Quick ? 64 : 256;
        var hook = $"blocks.{model.Config.NLayers - 1}.hook_resid_post";
        var dir = Path.Combine(Path.GetTempPath(), "lens-bench-harvest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var corpus = WriteCorpus(Path.Combine(dir, "corpus.arrow"), model.Config, rows, context);
            int run = 0;
            HarvestResult Harvest(string path, string dtype) =>
                ActivationHarvest.Run(model, model.Config.ModelName,
                    new HarvestOptions(path, [hook], context, Path.Combine(dir, $"out-{run++}"), batch, dtype));
            var batches = Enumerable.Range(0, rows / batch)
                .Select(i => BenchModels.Tokens(model.Config, batch, context, seed: i)).ToList();
            void Forward() { foreach (var t in batches) { using var o = model.Forward(t, ReturnType.None); } }

            var name = $"harvest throughput ({ctx.SmallLabel}, {rows}x{context} tokens, batch {batch}, {hook}, " +
                $"float32), vs the bare forward of the same batches";
            ctx.Options.Progress(name);
            var once = Timing.Milliseconds(() => Harvest(corpus, "float32")) + Timing.Milliseconds(Forward);
            var (harvestMs, forwardMs, _) =
                Timing.Paired(() => Harvest(corpus, "float32"), Forward, 1, ctx.Options.Repetitions(once, min: 3));
            double tokens = rows * context;
            var harvestRate = new Samples(harvestMs.Values.Select(ms => tokens / (ms / 1000)));
            var forwardRate = new Samples(forwardMs.Values.Select(ms => tokens / (ms / 1000)));
            yield return BenchRow.FromSamples(name, harvestRate, "tokens/s", forwardRate,
                harvestRate.Median / forwardRate.Median, Target.Ratio(">=", 0.9),
                $"a harvest includes hashing and counting the corpus, the probe run, writing and " +
                $"fsync; {harvestMs.Values.Count} pairs; torch threads {get_num_threads()}");

            // From 2× to 8× the throughput corpus: past the first GC and allocator warm-up, so what remains is growth
            // with the corpus.
            int baseRows = 2 * rows, largeRows = 8 * rows;
            var memoryName = $"harvest peak memory growth, corpus of {largeRows} rows vs {baseRows} rows " +
                $"({ctx.SmallLabel}, batch {batch})";
            var memoryTarget = Target.Value("<=", 32);
            if (!ProcessMemory.Available)
                yield return BenchRow.Skipped(memoryName, "MB", memoryTarget, "no /proc/self/status");
            else
            {
                ctx.Options.Progress(memoryName);
                var baseCorpus = WriteCorpus(Path.Combine(dir, "corpus-base.arrow"), model.Config, baseRows, context);
                var large = WriteCorpus(Path.Combine(dir, "corpus-large.arrow"), model.Config, largeRows, context);
                double Peak(string path)
                {
                    ProcessMemory.Settle();
                    if (!ProcessMemory.ResetPeak()) return double.NaN;
                    long start = ProcessMemory.Resident();
                    Harvest(path, "float32");
                    return ProcessMemory.Mb(ProcessMemory.Peak() - start);
                }
                // The least of three runs each: a GC or another process's pressure can only add to a run's peak.
                double small = Enumerable.Range(0, 3).Min(_ => Peak(baseCorpus)),
                    big = Enumerable.Range(0, 3).Min(_ => Peak(large));
                double largeDataMb = ProcessMemory.Mb(largeRows * (long)context * (model.Config.DModel * 4 + 8));
                yield return double.IsNaN(small)
                    ? BenchRow.Skipped(memoryName, "MB", memoryTarget,
                        "the kernel refuses to reset the peak (clear_refs)")
                    : new BenchRow(memoryName, big - small, big - small, big - small, "MB", null, null, memoryTarget,
                        $"least peak of 3 runs above the resident set before the run: {small:0.0} MB for {baseRows} " +
                        $"rows, {big:0.0} MB for {largeRows} rows, whose dataset is {largeDataMb:0} MB on disk");
            }

            var sizeName =
                $"harvest output per million tokens, float16 vs float32 ({hook}, d_model {model.Config.DModel})";
            ctx.Options.Progress(sizeName);
            double PerMillion(string dtype)
            {
                var result = Harvest(corpus, dtype);
                return Directory.EnumerateFiles(result.Folder, "data-*.arrow")
                    .Sum(f => new FileInfo(f).Length) / tokens * 1e6 / 1e6;
            }
            double half = PerMillion("float16"), full = PerMillion("float32");
            yield return new BenchRow(sizeName, half, half, half, "MB", full, half / full, Target.Ratio("<=", 0.52),
                $"{model.Config.DModel} values of 2 bytes per token plus the 8-byte token id; float32: {full:0.0} MB");
            foreach (var t in batches) t.Dispose();
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>A pre-tokenized corpus: one Arrow stream file whose token_ids column holds random rows.</summary>
    static string WriteCorpus(string path, HookedTransformerConfig cfg, int rows, int context)
    {
        var column = new DatasetColumn("token_ids", [context], "int64");
        using var writer = new ArrowDataFileWriter(path, [column], rows);
        for (int r = 0; r < rows; r++)
        {
            using var t = BenchModels.Tokens(cfg, 1, context, seed: 1000 + r);
            var ids = t.data<long>().ToArray();
            writer.Append([MemoryMarshal.AsBytes(ids.AsSpan()).ToArray()]);
        }
        return path;
    }
}
