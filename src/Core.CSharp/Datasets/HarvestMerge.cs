using System.Diagnostics;
using Lens.IO;

namespace Lens.Datasets;

/// <summary>
/// Joins the N shards of one harvest into one dataset laid out as the single-process run lays it out (the same
/// files, record batches, metadata and manifest), so the merged folder equals that run's byte for byte. Written
/// in a hidden sibling folder and renamed when complete; a merge into an existing complete merge of the same
/// harvest does nothing.
/// </summary>
public static class HarvestMerge
{
    public static HarvestResult Run(string shardsFolder, string output, IProgress<HarvestProgress>? progress = null,
        CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        if (!Directory.Exists(shardsFolder)) throw new HarvestException($"merge: '{shardsFolder}': no such folder");
        var shards = ActivationDataset.ShardFolders(shardsFolder);
        var manifests =
            shards.Select(s => HarvestManifest.TryRead(s)
                ?? throw new HarvestException(
                $"merge: '{s}' has no {HarvestManifest.FileName}: not a lens harvest shard")).ToList();
        var first = manifests[0];
        for (int i = 0; i < manifests.Count; i++)
        {
            var m = manifests[i];
            if (m.Settings.Difference(first.Settings) is string d)
                throw new HarvestException(
                    $"merge: '{shards[i]}' was harvested with other settings than '{shards[0]}' ({d})");
            if (!m.Complete) throw new HarvestException($"merge: '{shards[i]}' is not complete");
            long expected = i == 0 ? 0 : manifests[i - 1].FirstRow + manifests[i - 1].Rows;
            if (m.FirstRow != expected || m.CorpusRows != first.CorpusRows)
                throw new HarvestException($"merge: '{shards[i]}' starts at row {m.FirstRow}, expected {expected}: " +
                    $"the shards are not one harvest's");
        }
        long rows = manifests.Sum(m => m.Rows);
        var columns = first.Columns;
        if (OutputPaths.FolderProblem(output) is string problem) throw new HarvestException($"--out: {problem}");
        if (Directory.Exists(output))
        {
            var done = HarvestManifest.TryRead(output)
                ?? throw new HarvestException(
                $"--out '{output}' exists and is not a harvest (no {HarvestManifest.FileName}): give a new folder");
            var difference = done.Settings.Difference(first.Settings);
            if (difference is not null || done.ShardCount is not null || done.Rows != rows)
                throw new HarvestException($"--out '{output}' holds another " +
                    $"harvest{(difference is null ? "" : $" ({difference})")}: give a new folder");
            return new HarvestResult(output, rows, columns, 0, done.Files.Count, clock.Elapsed);
        }

        int fileCount = DatasetLayout.FileCount(rows, columns.Sum(c => c.BytesPerRow), first.Settings.MaxFileBytes);
        var files = Enumerable.Range(0, fileCount).Select(k => DatasetLayout.DataFileName(k, fileCount)).ToList();
        var partial = HarvestOptions.PartialFolder(output);
        if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
        Directory.CreateDirectory(partial);
        try
        {
            var source = ActivationDataset.Open(shardsFolder);
            using var rowsIn = Rows(source, columns).GetEnumerator();
            long done = 0;
            for (int k = 0; k < fileCount; k++)
            {
                var (s, e) = DatasetLayout.Contiguous(rows, fileCount, k);
                using var writer = new ArrowDataFileWriter(Path.Combine(partial, files[k]), columns, e - s);
                for (long r = s; r < e; r++)
                {
                    cancel.ThrowIfCancellationRequested();
                    if (!rowsIn.MoveNext())
                        throw new HarvestException(
                            $"merge: the shards hold fewer rows than their manifests say ({rows})");
                    writer.Append(rowsIn.Current);
                    done++;
                }
                progress?.Report(new HarvestProgress(done, rows, columns[0].Shape[0], 0, null));
            }
            var manifest = new HarvestManifest(first.Producer, first.Settings, null, null, first.CorpusRows, 0, rows,
                columns, files, files);
            manifest.Write(partial);
            DatasetLayout.WriteMetadata(partial, columns, files, first.Settings.Fingerprint());
            Directory.Move(partial, Path.GetFullPath(output).TrimEnd(Path.DirectorySeparatorChar));
        }
        catch
        {
            if (Directory.Exists(partial)) Directory.Delete(partial, recursive: true);
            throw;
        }
        return new HarvestResult(output, rows, columns, rows, 0, clock.Elapsed);
    }

    /// <summary>Each row as its columns' bytes, read one record batch at a time.</summary>
    static IEnumerable<ReadOnlyMemory<byte>[]> Rows(ActivationDataset source, IReadOnlyList<DatasetColumn> columns)
    {
        foreach (var file in source.Files)
            foreach (var batch in ArrowColumns.Batches(file))
                using (batch)
                {
                    var flat = columns.Select(c => ArrowColumns.FlatBytes(batch.Column(c.Name)).ToArray()).ToArray();
                    for (int r = 0; r < batch.Length; r++)
                        yield return columns.Select((c,
                            i) => (ReadOnlyMemory<byte>)flat[i]
                            .AsMemory(checked((int)(r * c.BytesPerRow)), (int)c.BytesPerRow)).ToArray();
                }
    }
}
