using System.Text;
using System.Text.Json;
using Lens.Visualization;

namespace Lens.Dsl.Runtime;

/// <summary>
/// A statement's value. Each kind knows its JSON fields (after "kind"; see docs/run-result.schema.json),
/// its terminal text and its place in the HTML report. <see cref="Summary"/> holds named numbers that
/// go with the value (per-repeat losses, baselines, per-layer attributions).
/// </summary>
public abstract record ResultValue
{
    private protected ResultValue() { }

    /// <summary>The JSON "kind": which fields the value has.</summary>
    public abstract string Kind { get; }

    /// <summary>One line saying what the value is.</summary>
    public string Title { get; init; } = "";

    public IReadOnlyList<KeyValuePair<string, double>> Summary { get; init; } = [];

    /// <summary>The value's own JSON fields (inside the result object, after the common ones).</summary>
    internal abstract void WriteFields(Utf8JsonWriter json);

    /// <summary>The body of the terminal text (the title and summary are added around it).</summary>
    protected abstract string Body();

    internal abstract void AddFigures(Report report);

    public string ToText()
    {
        var text = new StringBuilder();
        if (Title.Length > 0 && this is not LayerHeadValue) text.Append(Title).Append('\n');
        text.Append(Body().TrimEnd('\n')).Append('\n');
        foreach (var (name, value) in Summary)
            text.Append(CultureInfo.InvariantCulture, $"  {name}: {Numbers.Text(value)}\n");
        return text.ToString();
    }

    internal void AddTo(Report report)
    {
        AddFigures(report);
        if (Summary.Count > 0)
            report.AddTable(Title + " (summary)", ["", "value"],
                Summary.Select(kv => new[] { kv.Key, Numbers.Text(kv.Value) }).ToArray());
    }

    internal static void WriteGrid(Utf8JsonWriter json, string name, double[][] values)
    {
        json.WriteStartArray(name);
        foreach (var row in values)
        {
            json.WriteStartArray();
            foreach (var v in row) Numbers.Write(json, v);
            json.WriteEndArray();
        }
        json.WriteEndArray();
    }

    /// <summary>An array of strings, as a property when <paramref name="name"/> is given, else as an array
    /// value.</summary>
    internal static void WriteStrings(Utf8JsonWriter json, string? name, IEnumerable<string> values)
    {
        if (name is null) json.WriteStartArray();
        else json.WriteStartArray(name);
        foreach (var v in values) json.WriteStringValue(v);
        json.WriteEndArray();
    }

    internal static void WriteTokens(Utf8JsonWriter json, long[][] ids, string[][] tokens)
    {
        json.WriteStartArray("ids");
        foreach (var row in ids)
        {
            json.WriteStartArray();
            foreach (var id in row) json.WriteNumberValue(id);
            json.WriteEndArray();
        }
        json.WriteEndArray();
        json.WriteStartArray("tokens");
        foreach (var row in tokens)
        {
            json.WriteStartArray();
            foreach (var t in row) json.WriteStringValue(t);
            json.WriteEndArray();
        }
        json.WriteEndArray();
    }

    internal static string Table(string[] header, IEnumerable<string[]> rows) =>
        TextTable.Render(header, rows.ToArray());
}

/// <summary>One number (a loss, a metric), with its parts in the summary.</summary>
public sealed record ScalarValue(string Measure, double Value) : ResultValue
{
    public override string Kind => "scalar";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("measure", Measure);
        json.WritePropertyName("value");
        Numbers.Write(json, Value);
    }

    protected override string Body() => $"{Measure} = {Numbers.Text(Value)}";

    internal override void AddFigures(Report report) => report.AddText($"{Title}: {Measure} = {Numbers.Text(Value)}");
}

/// <summary>A value per attention head: <see cref="Values"/>[layer][head].</summary>
public sealed record LayerHeadValue(string Measure, double[][] Values) : ResultValue
{
    public override string Kind => "layer_head_table";

    public int Layers => Values.Length;

    public int Heads => Values.Length == 0 ? 0 : Values[0].Length;

    public double this[int layer, int head] => Values[layer][head];

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("measure", Measure);
        WriteGrid(json, "values", Values);
        json.WriteStartArray("labels");
        for (int l = 0; l < Layers; l++) WriteStrings(json, null, HeadNames.ForLayer(l, Heads));
        json.WriteEndArray();
    }

    protected override string Body() => LayerHeadTable.Render(Numbers.ToFloatGrid(Values), Title);

    internal override void AddFigures(Report report) =>
        report.AddFigure(Title, Heatmap.RenderFragment(Numbers.ToFloatGrid(Values),
            Enumerable.Range(0, Layers).Select(l => $"L{l}").ToArray(),
            Enumerable.Range(0, Heads).Select(h => $"H{h}").ToArray()));
}

/// <summary>A labelled grid that is not per head (composition scores between two head sets).</summary>
public sealed record MatrixValue(string Measure, double[][] Values, string[] RowLabels, string[] ColumnLabels)
    : ResultValue
{
    public override string Kind => "matrix";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("measure", Measure);
        WriteGrid(json, "values", Values);
        WriteStrings(json, "row_labels", RowLabels);
        WriteStrings(json, "column_labels", ColumnLabels);
    }

    protected override string Body() =>
        Table(["", .. ColumnLabels],
            RowLabels.Select((label, r) => (string[])[label, .. Values[r].Select(Numbers.Text)]));

    internal override void AddFigures(Report report) =>
        report.AddFigure(Title, Heatmap.RenderFragment(Numbers.ToFloatGrid(Values), RowLabels, ColumnLabels));
}

/// <summary>
/// Values over several named axes (activation patching): <see cref="Values"/> flat, last axis fastest,
/// written to JSON as nested arrays with one label list per axis.
/// </summary>
public sealed record TensorValue(string Measure, double[] Values, int[] Shape, string[] Axes, string[][] AxisLabels)
    : ResultValue
{
    public override string Kind => "tensor";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("measure", Measure);
        WriteStrings(json, "axes", Axes);
        json.WriteStartArray("axis_labels");
        foreach (var labels in AxisLabels) WriteStrings(json, null, labels);
        json.WriteEndArray();
        json.WritePropertyName("values");
        WriteNested(json, 0, 0);
    }

    void WriteNested(Utf8JsonWriter json, int axis, int offset)
    {
        json.WriteStartArray();
        int stride = Shape.Skip(axis + 1).Aggregate(1, (a, b) => a * b);
        for (int i = 0; i < Shape[axis]; i++)
            if (axis == Shape.Length - 1) Numbers.Write(json, Values[offset + i]);
            else WriteNested(json, axis + 1, offset + i * stride);
        json.WriteEndArray();
    }

    /// <summary>The 2-D slices to show: the whole value when it has two axes, one per first-axis entry when
    /// three.</summary>
    IEnumerable<(string Title, double[][] Grid, string[] Rows, string[] Columns)> Slices()
    {
        int rows = Shape[^2], cols = Shape[^1];
        int count = Shape.Length == 3 ? Shape[0] : 1;
        for (int s = 0; s < count; s++)
        {
            var grid = Enumerable.Range(0, rows).Select(r => Values.AsSpan(s * rows * cols + r * cols, cols).ToArray())
                .ToArray();
            var title =
                Shape.Length == 3 ? $"{Axes[0]} {AxisLabels[0][s]}: {Axes[1]} × {Axes[2]}" : $"{Axes[0]} × {Axes[1]}";
            yield return (title, grid, AxisLabels[^2], AxisLabels[^1]);
        }
    }

    protected override string Body() =>
        Shape.Length == 1
            ? Table(AxisLabels[0], [Values.Select(Numbers.Text).ToArray()])
            : string.Join("\n", Slices().Select(s =>
                s.Title + "\n"
                    + Table(["", .. s.Columns],
                    s.Rows.Select((label, r) => (string[])[label, .. s.Grid[r].Select(Numbers.Text)]))));

    internal override void AddFigures(Report report)
    {
        if (Shape.Length == 1)
            report.AddTable(Title, AxisLabels[0], [Values.Select(Numbers.Text).ToArray()]);
        else
            foreach (var s in Slices())
                report.AddFigure($"{Title} ({s.Title})",
                    Heatmap.RenderFragment(Numbers.ToFloatGrid(s.Grid), s.Rows, s.Columns));
    }
}

/// <summary>Token ids and their strings, one row per batch entry.</summary>
public sealed record TokensValue(long[][] Ids, string[][] Tokens) : ResultValue
{
    public override string Kind => "tokens";

    internal override void WriteFields(Utf8JsonWriter json) => WriteTokens(json, Ids, Tokens);

    protected override string Body() =>
        string.Join("\n", Tokens.Select((row, r) =>
            $"row {r} ({row.Length} tokens): " + string.Join("|", row.Select(Lens.Visualization.TokenText.Display))));

    internal override void AddFigures(Report report) =>
        report.AddTable(Title, ["row", "tokens", "ids"],
            Tokens.Select((row, r) => new[]
            {
                r.ToString(CultureInfo.InvariantCulture),
                string.Join("|", row.Select(Lens.Visualization.TokenText.Display)), string.Join(" ", Ids[r])
            }).ToArray());
}

/// <summary>Rows of cells (strings or numbers) under column names.</summary>
public sealed record TableValue(string[] Columns, object[][] Rows) : ResultValue
{
    public override string Kind => "table";

    /// <summary>At most this many rows in the terminal (the JSON and the report have them all).</summary>
    public int? MaxTextRows { get; init; }

    internal override void WriteFields(Utf8JsonWriter json)
    {
        WriteStrings(json, "columns", Columns);
        json.WriteStartArray("rows");
        foreach (var row in Rows)
        {
            json.WriteStartArray();
            foreach (var cell in row)
                switch (cell)
                {
                    case double d: Numbers.Write(json, d); break;
                    case float f: Numbers.Write(json, Numbers.FromFloat(f)); break;
                    case int i: json.WriteNumberValue(i); break;
                    case long l: json.WriteNumberValue(l); break;
                    case null: json.WriteNullValue(); break;
                    default: json.WriteStringValue(cell.ToString()); break;
                }
            json.WriteEndArray();
        }
        json.WriteEndArray();
    }

    string[][] Cells() => Rows.Select(row => row.Select(Cell).ToArray()).ToArray();

    static string Cell(object? cell) => cell switch
    {
        double d => Numbers.Text(d),
        float f => Numbers.Text(f),
        null => "",
        _ => cell.ToString() ?? "",
    };

    protected override string Body()
    {
        if (Rows.Length == 0) return "(no rows)";
        var cells = Cells();
        if (MaxTextRows is not int max || cells.Length <= max) return Table(Columns, cells);
        return Table(Columns, cells.Take(max))
            + $"... {cells.Length - max} more rows (in the JSON and the HTML report)";
    }

    internal override void AddFigures(Report report)
    {
        const int limit = 1000;   // a report stays readable; the JSON has every row
        var cells = Cells();
        report.AddTable(Title, Columns, cells.Take(limit).ToArray());
        if (cells.Length > limit) report.AddText($"... {cells.Length - limit} more rows (in the JSON record)");
    }
}

/// <summary>A set of heads (`heads ...`, a printed selection).</summary>
public sealed record HeadsValue(IReadOnlyList<HeadRef> Heads) : ResultValue
{
    public override string Kind => "heads";

    internal override void WriteFields(Utf8JsonWriter json) => WriteStrings(json, "heads", Heads.Select(h => h.Label));

    protected override string Body() => Heads.Count == 0
        ? "(no heads)"
        : $"{string.Join(", ", Heads)}  ({Heads.Count} head{(Heads.Count == 1 ? "" : "s")})";

    internal override void AddFigures(Report report) => report.AddText($"{Title}: {Body()}");
}

/// <summary>Generated text: per row, the whole text and the new tokens.</summary>
public sealed record TextValue(string[] Texts, long[][] Ids, string[][] Tokens) : ResultValue
{
    public override string Kind => "text";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        WriteStrings(json, "texts", Texts);
        WriteTokens(json, Ids, Tokens);
    }

    protected override string Body() => string.Join("\n", Texts.Select((t, r) => $"row {r}: {t}"));

    internal override void AddFigures(Report report) => report.AddTable(Title, ["row", "text"],
        Texts.Select((t, r) => new[] { r.ToString(CultureInfo.InvariantCulture), t }).ToArray());
}

/// <summary>A figure (`show`): HTML for the report, written to <see cref="Path"/> when the statement named a
/// file.</summary>
public sealed record FigureValue(HtmlContent Figure, string? Path, string ConsoleText) : ResultValue
{
    public override string Kind => "figure";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        if (Path is null) json.WriteNull("path");
        else json.WriteString("path", Path);
    }

    protected override string Body() => ConsoleText + (Path is null ? "" : $"\nwrote {Path}");

    internal override void AddFigures(Report report) => report.AddFigure(Title, Figure);
}

/// <summary>An activation (`print HOOK`): its shape and statistics, and its first values.</summary>
public sealed record ActivationValue(string Hook, long[] Shape, double Mean, double Std, double Min, double Max,
    double[] First) : ResultValue
{
    /// <summary>The Frobenius norm of the whole activation (every row and position).</summary>
    public double Norm { get; init; } = double.NaN;

    public override string Kind => "activation";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("hook", Hook);
        json.WriteStartArray("shape");
        foreach (var s in Shape) json.WriteNumberValue(s);
        json.WriteEndArray();
        foreach (var (name, v) in new[] { ("mean", Mean), ("std", Std), ("min", Min), ("max", Max), ("norm", Norm) })
        {
            json.WritePropertyName(name);
            Numbers.Write(json, v);
        }
        json.WriteStartArray("first");
        foreach (var v in First) Numbers.Write(json, v);
        json.WriteEndArray();
    }

    protected override string Body() =>
        $"{Hook} [{string.Join(", ", Shape)}]: mean {Numbers.Text(Mean)}, std {Numbers.Text(Std)}, "
        + $"min {Numbers.Text(Min)}, max {Numbers.Text(Max)}, norm {Numbers.Text(Norm)}\n"
        + $"first values: {string.Join(" ", First.Select(Numbers.Text))}";

    internal override void AddFigures(Report report) => report.AddText($"{Title}: {Body()}");
}

/// <summary>A file the experiment wrote (`cache save`) and the tensors in it.</summary>
public sealed record FileValue(string Path, string[] Names) : ResultValue
{
    public override string Kind => "file";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("path", Path);
        WriteStrings(json, "names", Names);
    }

    protected override string Body() => $"wrote {Names.Length} tensors to {Path}";

    internal override void AddFigures(Report report) => report.AddText($"{Title}: {Body()}");
}

/// <summary>A circuit study (`circuit`): one row of spectrum statistics per head, and the strongest token pairs for
/// full circuits.</summary>
public sealed record CircuitValue(string Circuit, TableValue Heads, TableValue? Pairs) : ResultValue
{
    public override string Kind => "circuit";

    internal override void WriteFields(Utf8JsonWriter json)
    {
        json.WriteString("circuit", Circuit);
        json.WriteStartObject("heads");
        Heads.WriteFields(json);
        json.WriteEndObject();
        if (Pairs is null) json.WriteNull("pairs");
        else
        {
            json.WriteStartObject("pairs");
            Pairs.WriteFields(json);
            json.WriteEndObject();
        }
    }

    protected override string Body() => Heads.ToText() + (Pairs is null ? "" : Pairs.ToText());

    internal override void AddFigures(Report report)
    {
        Heads.AddTo(report);
        Pairs?.AddTo(report);
    }
}
