using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Lens.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Datasets;

/// <summary>
/// Runs a model over a corpus's packed rows and writes the chosen hooks' activations as a <c>datasets</c> folder
/// (docs/activation-datasets.md). Rows are forwarded in batches of <c>Batch</c> rows on a grid fixed from the
/// corpus's first row, so every run, sharded or not, forwards the same batches; a shard is a contiguous range of
/// whole batches. The folder is built in a hidden sibling and renamed when complete; each data file is renamed
/// into place when complete and recorded in the manifest, so a killed run resumes at its first unfinished file.
/// </summary>
public static class ActivationHarvest
{
    sealed record Work(long FirstRow, int Rows, byte[][] Columns);

    sealed record PendingFile(string Name, long Start, long End);

    /// <param name="modelId">how the model was named (recorded; an existing output made from another is
    /// refused).</param>
    public static HarvestResult Run(HookedTransformer model, string modelId, HarvestOptions options,
        IProgress<HarvestProgress>? progress = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var o = options;
        CheckOptions(o, model.Config);
        var corpus = HarvestCorpus.Open(o.Corpus);
        var hooks = ResolveHooks(model, o.Hooks);
        var target = o.Target;
        if (OutputPaths.FolderProblem(target) is string problem) throw new HarvestException($"--out: {problem}");
        var settings = new HarvestSettings(modelId, corpus.Hash(), hooks, o.Context, o.Batch, o.Dtype, o.MaxTokens,
            o.MaxFileBytes);

        if (Directory.Exists(target))
        {
            var done = HarvestManifest.TryRead(target)
                ?? throw new HarvestException(
                $"--out '{target}' exists and is not a harvest (no {HarvestManifest.FileName}): give a new folder");
            CheckSame(done, settings, o, target);
            return new HarvestResult(target, done.Rows, done.Columns, 0, done.Files.Count, clock.Elapsed);
        }
        var partial = HarvestOptions.PartialFolder(target);
        var existing = Directory.Exists(partial) ? HarvestManifest.TryRead(partial) : null;
        if (existing is not null) CheckSame(existing, settings, o, partial);

        var columns = existing?.Columns ?? Probe(model, hooks, o);
        long corpusRows = existing?.CorpusRows ?? CountRows(corpus, model, o);
        var (first, end) = ShardRows(corpusRows, o);
        var manifest = existing ?? NewManifest(settings, o, corpusRows, first, end - first, columns);
        Directory.CreateDirectory(partial);
        manifest.Write(partial);

        var ranges = FileRanges(manifest);
        var complete =
            manifest.CompleteFiles.Where(f => File.Exists(Path.Combine(partial, f))).ToHashSet(StringComparer.Ordinal);
        var pending = ranges.Where(f => !complete.Contains(f.Name)).ToList();
        long toCompute = pending.Sum(f => f.End - f.Start);
        if (pending.Count > 0)
            Compute(model, corpus, o, columns, hooks, partial, pending, manifest, complete, toCompute, progress,
                cancel);

        DatasetLayout.WriteMetadata(partial, columns, manifest.Files, settings.Fingerprint());
        foreach (var stale in Directory.EnumerateFiles(partial, ".*.tmp")) File.Delete(stale);
        Directory.Move(partial, Path.GetFullPath(target).TrimEnd(Path.DirectorySeparatorChar));
        return new HarvestResult(target, manifest.Rows, columns, toCompute, ranges.Count - pending.Count,
            clock.Elapsed);
    }

    static void CheckOptions(HarvestOptions o, HookedTransformerConfig cfg)
    {
        if (o.Context < 2 || o.Context > cfg.NCtx)
            throw new HarvestException($"--context {o.Context}: model {cfg.ModelName} takes rows of 2 to {cfg.NCtx} " +
                $"tokens (n_ctx), BOS included");
        if (o.Batch < 1) throw new HarvestException($"--batch {o.Batch}: at least one row per forward");
        if (o.Dtype == "bfloat16")
            throw new HarvestException("--dtype bfloat16: Arrow and datasets have no bfloat16 type, so no reader " +
                "would see the values; use float16 or float32");
        if (o.Dtype is not ("float32" or "float16"))
            throw new HarvestException($"--dtype {o.Dtype}: give float32 or float16");
        if (o.ShardCount < 1 || o.ShardIndex < 0 || o.ShardIndex >= o.ShardCount)
            throw new HarvestException(
                $"--shard {o.ShardIndex}/{o.ShardCount}: the index runs from 0 to the count − 1");
        if (o.MaxTokens is long t && t < o.Context)
            throw new HarvestException($"--max-tokens {t}: fewer than one row of --context {o.Context}");
        if (o.MaxFileBytes < 1) throw new HarvestException($"max file bytes {o.MaxFileBytes}: must be positive");
        if (o.Hooks.Count == 0)
            throw new HarvestException("--hooks: name at least one hook point (a glob or a full name)");
    }

    /// <summary>Full hook names matched by the patterns, in the model's order; a pattern matching none is
    /// refused.</summary>
    public static IReadOnlyList<string> ResolveHooks(HookedTransformer model, IReadOnlyList<string> patterns)
    {
        var names = model.HookNames.ToList();
        var matcher = new HookNamePatterns(patterns);
        foreach (var (pattern, matches) in matcher.Patterns)
            if (!names.Any(matches))
                throw new HarvestException($"--hooks '{pattern}' matches no hook point of " +
                    $"model {model.Config.ModelName} (hook points look like {string.Join(", ", names.Take(4))}, …)");
        return names.Where(matcher.IsMatch).ToList();
    }

    static void CheckSame(HarvestManifest found, HarvestSettings settings, HarvestOptions o, string folder)
    {
        if (found.Settings.Difference(settings) is string difference)
            throw new HarvestException($"--out '{folder}' holds a harvest made with other settings ({difference}, " +
                $"the first given as recorded there): give a new folder, or the same options");
        int? index = o.ShardCount == 1 ? null : o.ShardIndex, count = o.ShardCount == 1 ? null : o.ShardCount;
        if (found.ShardIndex != index || found.ShardCount != count)
            throw new HarvestException($"--out '{folder}' holds shard " +
                $"{found.ShardIndex?.ToString(CultureInfo.InvariantCulture) ?? "-"}/" +
                $"{found.ShardCount?.ToString(CultureInfo.InvariantCulture) ?? "-"}, not " +
                $"{index?.ToString(CultureInfo.InvariantCulture) ?? "-"}/" +
                $"{count?.ToString(CultureInfo.InvariantCulture) ?? "-"}");
    }

    /// <summary>The columns: token_ids [context] int64, then each hook's shape per row from a one-row run.</summary>
    static IReadOnlyList<DatasetColumn> Probe(HookedTransformer model, IReadOnlyList<string> hooks, HarvestOptions o)
    {
        using var scope = NewDisposeScope();
        using var tokens = zeros(1, o.Context, dtype: ScalarType.Int64, device: model.Device);
        var wanted = hooks.ToHashSet(StringComparer.Ordinal);
        using var run = model.RunWithCache(tokens, ReturnType.None, wanted.Contains, stopAtLayer: StopLayer(hooks));
        var columns = new List<DatasetColumn> { new("token_ids", [o.Context], "int64") };
        foreach (var hook in hooks)
        {
            if (!run.Cache.TryGetValue(hook, out var t))
                throw new HarvestException($"--hooks: hook point '{hook}' does not fire on " +
                    $"model {model.Config.ModelName} (a config flag switches it off)");
            columns.Add(new DatasetColumn(hook, t.shape.Skip(1).Select(d => (int)d).ToArray(), o.Dtype));
        }
        return columns;
    }

    /// <summary>When every hook is inside a block, the blocks after the last one are not run.</summary>
    static int? StopLayer(IReadOnlyList<string> hooks)
    {
        int last = -1;
        foreach (var hook in hooks)
        {
            var parts = hook.Split('.');
            if (parts.Length < 3 || parts[0] != "blocks" || !int.TryParse(parts[1], out var layer)) return null;
            last = Math.Max(last, layer);
        }
        return last + 1;
    }

    /// <summary>Counts the corpus's rows (up to --max-tokens), checking every id against the vocabulary.</summary>
    static long CountRows(HarvestCorpus corpus, HookedTransformer model, HarvestOptions o)
    {
        long limit = o.MaxTokens is long t ? t / o.Context : long.MaxValue, rows = 0;
        foreach (var row in corpus.Rows(model.Tokenizer, o.Context))
        {
            if (rows == limit) break;
            for (int p = 0; p < row.Length; p++)
                if (row[p] < 0 || row[p] >= model.Config.DVocab)
                    throw new HarvestException($"--corpus '{o.Corpus}': row {rows}, position {p} holds id {row[p]}, " +
                        $"outside model {model.Config.ModelName}'s vocabulary (0..{model.Config.DVocab - 1})");
            rows++;
        }
        if (rows == 0) throw new HarvestException($"--corpus '{o.Corpus}' gives no rows of {o.Context} tokens");
        return rows;
    }

    /// <summary>Shard I of N: the I-th contiguous part (datasets' shard(contiguous=True) rule) of the batches, as
    /// rows.</summary>
    public static (long First, long End) ShardRows(long corpusRows, HarvestOptions o)
    {
        long batches = (corpusRows + o.Batch - 1) / o.Batch;
        var (b0, b1) = DatasetLayout.Contiguous(batches, o.ShardCount, o.ShardIndex);
        return (Math.Min(b0 * o.Batch, corpusRows), Math.Min(b1 * o.Batch, corpusRows));
    }

    static HarvestManifest NewManifest(HarvestSettings settings, HarvestOptions o, long corpusRows, long first,
        long rows, IReadOnlyList<DatasetColumn> columns)
    {
        int files = DatasetLayout.FileCount(rows, columns.Sum(c => c.BytesPerRow), o.MaxFileBytes);
        return new HarvestManifest("lens harvest", settings, o.ShardCount == 1 ? null : o.ShardIndex,
            o.ShardCount == 1 ? null : o.ShardCount,
            corpusRows, first, rows, columns,
            Enumerable.Range(0, files).Select(k => DatasetLayout.DataFileName(k, files)).ToList(), []);
    }

    static List<PendingFile> FileRanges(HarvestManifest m) =>
        m.Files.Select((name, k) =>
        {
            var (s, e) = DatasetLayout.Contiguous(m.Rows, m.Files.Count, k);
            return new PendingFile(name, m.FirstRow + s, m.FirstRow + e);
        }).ToList();

    static void Compute(HookedTransformer model, HarvestCorpus corpus, HarvestOptions o,
        IReadOnlyList<DatasetColumn> columns, IReadOnlyList<string> hooks,
        string partial, List<PendingFile> pending, HarvestManifest manifest, HashSet<string> complete, long toCompute,
        IProgress<HarvestProgress>? progress, CancellationToken cancel)
    {
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        using var queue = new BlockingCollection<Work>(boundedCapacity: 2);
        var buffers = new BatchBuffers(columns, o.Batch);
        Exception? writerError = null;
        long written = 0;
        var writer = Task.Factory.StartNew(() =>
        {
            try
            {
                WriteFiles(queue, columns, partial, pending, manifest, complete, buffers, ref written, failed.Token);
            }
            catch (Exception e) { writerError = e; failed.Cancel(); }
        }, TaskCreationOptions.LongRunning);

        var wanted = hooks.ToHashSet(StringComparer.Ordinal);
        int? stop = StopLayer(hooks);
        var dtype = o.Dtype == "float16" ? ScalarType.Float16 : ScalarType.Float32;
        // The last batch on the grid that holds a pending row: a batch is never cut short, so its numbers match every
        // other run's.
        long lastNeeded = Math.Min((pending[^1].End + o.Batch - 1) / o.Batch * o.Batch, manifest.CorpusRows);
        var clock = Stopwatch.StartNew();
        var lastReport = TimeSpan.Zero;
        try
        {
            var batch = new List<long[]>(o.Batch);
            long row = 0, batchFirst = 0;
            foreach (var tokens in corpus.Rows(model.Tokenizer, o.Context))
            {
                if (row >= lastNeeded) break;
                if (batch.Count == 0) batchFirst = row;
                batch.Add(tokens);
                row++;
                if (batch.Count < o.Batch && row < lastNeeded) continue;
                if (pending.Any(f => f.Start < batchFirst + batch.Count && f.End > batchFirst))
                {
                    var work = Forward(model, batch, batchFirst, wanted, stop, dtype, columns, o.Context, buffers);
                    queue.Add(work, failed.Token);
                }
                batch.Clear();
                if (progress is not null && clock.Elapsed - lastReport > TimeSpan.FromSeconds(0.5))
                {
                    lastReport = clock.Elapsed;
                    Report(progress, Interlocked.Read(ref written), toCompute, o.Context, clock.Elapsed);
                }
            }
            queue.CompleteAdding();
            writer.Wait(CancellationToken.None);
        }
        catch (OperationCanceledException) when (writerError is not null) { }
        finally
        {
            queue.CompleteAdding();
            try { writer.Wait(CancellationToken.None); } catch (AggregateException) { }
        }
        if (writerError is not null) throw writerError;
        cancel.ThrowIfCancellationRequested();
        if (progress is not null) Report(progress, Interlocked.Read(ref written), toCompute, o.Context, clock.Elapsed);
        if (complete.Count != manifest.Files.Count)
            throw new HarvestException($"the corpus '{o.Corpus}' gave fewer rows than when it was counted " +
                $"({manifest.CorpusRows}): it changed during the run");
    }

    static void Report(IProgress<HarvestProgress> progress, long done, long total, int context, TimeSpan elapsed)
    {
        double rate = elapsed.TotalSeconds > 0 ? done * context / elapsed.TotalSeconds : 0;
        TimeSpan? remaining = rate > 0 ? TimeSpan.FromSeconds((total - done) * context / rate) : null;
        progress.Report(new HarvestProgress(done, total, context, rate, remaining));
    }

    /// <summary>
    /// Buffers for a batch's bytes, handed back by the writer once written: at most the queue's two batches, the one
    /// being written and the one being computed exist at once, so memory does not grow with the corpus (fresh
    /// arrays per batch would be large-object garbage that the GC collects late).
    /// </summary>
    sealed class BatchBuffers(IReadOnlyList<DatasetColumn> columns, int batch)
    {
        readonly ConcurrentBag<byte[][]> _free = [];

        public byte[][] Rent() => _free.TryTake(out var b)
            ? b
            : columns.Select(c => new byte[checked((int)(c.BytesPerRow * batch))]).ToArray();

        public void Return(byte[][] buffers) => _free.Add(buffers);
    }

    static Work Forward(HookedTransformer model, List<long[]> rows, long first, HashSet<string> wanted, int? stop,
        ScalarType dtype, IReadOnlyList<DatasetColumn> columns, int context, BatchBuffers buffers)
    {
        var bytes = buffers.Rent();
        var ids = MemoryMarshal.Cast<byte, long>(bytes[0].AsSpan());
        for (int r = 0; r < rows.Count; r++) rows[r].CopyTo(ids.Slice(r * context, context));
        using var scope = NewDisposeScope();
        using var tokens = tensor(ids[..(rows.Count * context)].ToArray(), [rows.Count, context],
            dtype: ScalarType.Int64, device: model.Device);
        using var run = model.RunWithCache(tokens, ReturnType.None, wanted.Contains, stopAtLayer: stop);
        for (int c = 1; c < columns.Count; c++)
            run.Cache[columns[c].Name].to(dtype).cpu().contiguous().bytes.CopyTo(bytes[c]);
        return new Work(first, rows.Count, bytes);
    }

    static void WriteFiles(BlockingCollection<Work> queue, IReadOnlyList<DatasetColumn> columns, string partial,
        List<PendingFile> pending,
        HarvestManifest manifest, HashSet<string> complete, BatchBuffers buffers, ref long written,
        CancellationToken cancel)
    {
        int next = 0;
        ArrowDataFileWriter? file = null;
        var row = new ReadOnlyMemory<byte>[columns.Count];
        try
        {
            foreach (var work in queue.GetConsumingEnumerable(cancel))
            {
                for (int i = 0; i < work.Rows; i++)
                {
                    long r = work.FirstRow + i;
                    while (next < pending.Count && pending[next].End <= r) next++;
                    if (next == pending.Count || r < pending[next].Start) continue;
                    var target = pending[next];
                    file ??= new ArrowDataFileWriter(Path.Combine(partial, target.Name), columns,
                        target.End - target.Start);
                    for (int c = 0; c < columns.Count; c++)
                        row[c] = work.Columns[c]
                            .AsMemory(checked((int)(i * columns[c].BytesPerRow)), (int)columns[c].BytesPerRow);
                    file.Append(row);
                    Interlocked.Increment(ref written);
                    if (file.Done)
                    {
                        file.Dispose();
                        file = null;
                        complete.Add(target.Name);
                        (manifest with { CompleteFiles = manifest.Files.Where(complete.Contains).ToList() })
                            .Write(partial);
                    }
                }
                buffers.Return(work.Columns);
            }
        }
        finally { file?.Dispose(); }
    }
}
