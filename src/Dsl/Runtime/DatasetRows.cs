using Lens.Datasets;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// Rows of an activation dataset (<c>lens harvest</c>'s folder) for the experiment language: the token ids of
/// <c>input dataset "DIR" rows A..B</c>, and a hook column's stored activations for <c>cache load "DIR"</c>. The
/// data files that hold the rows, and their folder's state.json and manifest, are recorded (and hashed) as read;
/// files before the rows are only counted through.
/// </summary>
public static class DatasetRows
{
    public const string TokenColumn = "token_ids";

    public static ActivationDataset Open(ExperimentEnvironment environment, string asWritten)
    {
        var path = environment.ReadPath(asWritten);
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException(
                $"dataset folder '{asWritten}' not found (a relative path is relative to the experiment's folder)");
        return ActivationDataset.Open(path);
    }

    /// <summary>The rows' token ids, one array per row.</summary>
    public static long[][] TokenIds(ExperimentEnvironment environment, DatasetInput source)
    {
        var data = Open(environment, source.Path);
        var column = data.Column(TokenColumn);
        if (column.Dtype != "int64" || column.Shape.Length != 1)
            throw new HarvestException($"dataset '{source.Path}': column {TokenColumn} holds {column.Dtype} " +
                $"[{string.Join(", ", column.Shape)}] per row, not int64 [positions]");
        if (source.FirstRow + source.Rows > data.RowCount)
            throw new ArgumentOutOfRangeException(null,
                $"dataset '{source.Path}' has {data.RowCount} rows (0..{data.RowCount - 1}): rows {RowsText(source)} " +
                $"are out of range");
        using var rows = Read(environment, data, TokenColumn, source.FirstRow, source.Rows, "input");
        var flat = TensorData.Longs(rows);
        int width = column.Shape[0];
        return Enumerable.Range(0, source.Rows).Select(r => flat.AsSpan(r * width, width).ToArray()).ToArray();
    }

    /// <summary>The rows as the experiment writes them: `A..B`, or `A` for one row.</summary>
    public static string RowsText(DatasetInput source) =>
        source.Rows == 1 ? $"{source.FirstRow}" : $"{source.FirstRow}..{source.FirstRow + source.Rows}";

    /// <summary>One column's rows as stored ([rows, shape...]), recording the files read under
    /// <paramref name="role"/>.</summary>
    public static Tensor Read(ExperimentEnvironment environment, ActivationDataset data, string column, long first,
        int count, string role)
    {
        var (rows, files) = data.ReadRows(column, first, count);
        foreach (var folder in files.Select(f => Path.GetDirectoryName(f)!).Distinct())
            foreach (var meta in new[] { DatasetLayout.StateFile, DatasetLayout.InfoFile, HarvestManifest.FileName })
                environment.RecordRead(role, Path.Combine(folder, meta));
        foreach (var file in files) environment.RecordRead(role, file);
        return rows;
    }
}
