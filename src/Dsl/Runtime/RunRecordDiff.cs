using System.Globalization;
using System.Text.Json;

namespace Lens.Dsl.Runtime;

/// <summary>
/// The differences between two run records (docs/run-result.schema.json). <see cref="Changes"/> are what make the
/// records disagree: the model, the inputs, the files read, and results (matched by line and statement text)
/// whose cells differ by more than the tolerance or that only one record has. <see cref="Context"/> says what
/// differs in how they were made (Lens version and commit, TorchSharp, libtorch, threads, CPU, OS, device, seed).
/// </summary>
public sealed record RunRecordDiff(IReadOnlyList<string> Context, IReadOnlyList<string> Changes, int Compared,
    int ChangedResults, int ChangedCells)
{
    public static RunRecordDiff Compare(JsonElement before, JsonElement after, double tolerance)
    {
        var context = new List<string>();
        var changes = new List<string>();
        void Field(List<string> into, string what, string? a, string? b)
        {
            if (a != b) into.Add($"{what}: {a ?? "(none)"} → {b ?? "(none)"}");
        }
        Field(context, "Lens version", Text(before, "lens_version"), Text(after, "lens_version"));
        var pa = Child(before, "provenance");
        var pb = Child(after, "provenance");
        foreach (var (name, what) in new[]
        {
            ("lens_commit", "Lens commit"), ("torchsharp_version", "TorchSharp"), ("libtorch_version", "libtorch"),
            ("threads", "threads"), ("cpu", "CPU"), ("os", "OS")
        })
            Field(context, what, Text(pa, name), Text(pb, name));
        Field(context, "device", Text(before, "device"), Text(after, "device"));
        Field(context, "seed", Text(before, "seed"), Text(after, "seed"));

        var ma = Child(before, "model");
        var mb = Child(after, "model");
        foreach (var name in new[] { "name", "weights_sha256", "n_layers", "n_heads", "d_model", "d_vocab", "n_ctx" })
            Field(changes, $"model {name}", Text(ma, name), Text(mb, name));

        var ia = Items(before, "inputs");
        var ib = Items(after, "inputs");
        for (int i = 0; i < Math.Max(ia.Count, ib.Count); i++)
        {
            var a = i < ia.Count ? ia[i] : (JsonElement?)null;
            var b = i < ib.Count ? ib[i] : (JsonElement?)null;
            var sa = a is { } x ? Text(x, "source") : null;
            var sb = b is { } y ? Text(y, "source") : null;
            if (sa != sb) changes.Add($"input {i + 1}: {sa ?? "(none)"} → {sb ?? "(none)"}");
            else if (a is { } u && b is { } v && u.GetProperty("ids").GetRawText() != v.GetProperty("ids").GetRawText())
                changes.Add($"input {i + 1} ({sa}): the token ids differ");
        }

        var fa = Files(pa);
        var fb = Files(pb);
        foreach (var (path, sha) in fa)
            if (!fb.TryGetValue(path, out var other)) changes.Add($"file read only before: {path}");
            else if (other != sha)
                changes.Add($"file {path}: sha256 {sha[..12]}… → {other[..Math.Min(12, other.Length)]}…");
        foreach (var path in fb.Keys.Where(p => !fa.ContainsKey(p))) changes.Add($"file read only after: {path}");

        var ra = Keyed(Items(before, "results"));
        var rb = Keyed(Items(after, "results"));
        int compared = 0, changedResults = 0, changedCells = 0;
        foreach (var (key, a) in ra)
        {
            if (!rb.TryGetValue(key, out var b))
            {
                changes.Add($"{Describe(key)}: only in the first record");
                continue;
            }
            compared++;
            var cellsA = Cells(a);
            var cellsB = Cells(b);
            int changedHere = 0;
            foreach (var (cell, va) in cellsA)
            {
                var vb = cellsB.TryGetValue(cell, out var v) ? v : null;
                if (Same(va, vb, tolerance)) continue;
                changes.Add($"{Describe(key)}: {cell} {Show(va)} → {Show(vb)}");
                changedHere++;
            }
            foreach (var (cell, vb) in cellsB.Where(c => !cellsA.ContainsKey(c.Key)))
            {
                changes.Add($"{Describe(key)}: {cell} (none) → {Show(vb)}");
                changedHere++;
            }
            if (changedHere > 0) { changedResults++; changedCells += changedHere; }
        }
        foreach (var key in rb.Keys.Where(k => !ra.ContainsKey(k)))
            changes.Add($"{Describe(key)}: only in the second record");
        return new RunRecordDiff(context, changes, compared, changedResults, changedCells);
    }

    static string Describe((int Line, string Statement, int Occurrence) key) =>
        $"line {key.Line} `{key.Statement}`" + (key.Occurrence > 0 ? $" (run {key.Occurrence + 1})" : "");

    /// <summary>Results by (line, statement, occurrence): a statement that ran twice (a REPL session) is matched in
    /// order.</summary>
    static Dictionary<(int, string, int), JsonElement> Keyed(IReadOnlyList<JsonElement> results)
    {
        var keyed = new Dictionary<(int, string, int), JsonElement>();
        foreach (var r in results)
        {
            int line = r.TryGetProperty("line", out var l) && l.TryGetInt32(out var n) ? n : 0;
            var statement = Text(r, "statement") ?? "";
            int occurrence = 0;
            while (keyed.ContainsKey((line, statement, occurrence))) occurrence++;
            keyed[(line, statement, occurrence)] = r;
        }
        return keyed;
    }

    /// <summary>
    /// A result's cells by name: layer × head tables by head (L1H1), matrices by row → column label, tensors by
    /// their axis labels, tables by row and column, summaries by name; anything else by its JSON path.
    /// </summary>
    public static Dictionary<string, JsonElement?> Cells(JsonElement result)
    {
        var cells = new Dictionary<string, JsonElement?>();
        var kind = Text(result, "kind");
        foreach (var p in result.EnumerateObject())
        {
            switch (p.Name)
            {
                case "statement" or "line" or "command" or "kind" or "title" or "labels" or "row_labels"
                    or "column_labels" or "axes" or "axis_labels":
                    continue;
                case "values" when kind == "layer_head_table":
                    Grid(cells, p.Value, (l, h) => $"L{l}H{h}");
                    continue;
                case "values" when kind == "matrix":
                {
                    var rows = Strings(result, "row_labels");
                    var columns = Strings(result, "column_labels");
                    Grid(cells, p.Value, (r, c) => $"{Label(rows, r)} → {Label(columns, c)}");
                    continue;
                }
                case "values" when kind == "tensor":
                {
                    var axes = Strings(result, "axes");
                    var labels = result.GetProperty("axis_labels").EnumerateArray()
                        .Select(a => a.EnumerateArray().Select(x => x.GetString() ?? "").ToArray()).ToArray();
                    Nested(cells, p.Value, [], axes, labels);
                    continue;
                }
                case "summary":
                    foreach (var s in p.Value.EnumerateObject()) cells[s.Name] = s.Value;
                    continue;
                case "rows" when kind == "table":
                    Table(cells, result, "");
                    continue;
                case "heads" or "pairs" when kind == "circuit" && p.Value.ValueKind == JsonValueKind.Object:
                    Table(cells, p.Value, p.Name == "pairs" ? "pairs " : "");
                    continue;
            }
            Walk(cells, p.Value, p.Name);
        }
        return cells;
    }

    static void Grid(Dictionary<string, JsonElement?> cells, JsonElement grid, Func<int, int, string> name)
    {
        int r = 0;
        foreach (var row in grid.EnumerateArray())
        {
            int c = 0;
            foreach (var v in row.EnumerateArray()) cells[name(r, c++)] = v;
            r++;
        }
    }

    static void Nested(Dictionary<string, JsonElement?> cells, JsonElement value, List<string> at, string[] axes,
        string[][] labels)
    {
        if (value.ValueKind != JsonValueKind.Array)
        {
            cells[string.Join(", ", at)] = value;
            return;
        }
        int i = 0;
        foreach (var v in value.EnumerateArray())
        {
            int axis = at.Count;
            var label = axis < labels.Length ? Label(labels[axis], i) : i.ToString(CultureInfo.InvariantCulture);
            Nested(cells, v, [.. at, axis < axes.Length ? $"{axes[axis]} {label}" : label], axes, labels);
            i++;
        }
    }

    /// <summary>A table's cells as "row N, COLUMN" (or "HEAD COLUMN" when its first column names heads, as circuits'
    /// do).</summary>
    static void Table(Dictionary<string, JsonElement?> cells, JsonElement table, string prefix)
    {
        var columns = Strings(table, "columns");
        int r = 0;
        foreach (var row in table.GetProperty("rows").EnumerateArray())
        {
            var values = row.EnumerateArray().ToArray();
            bool headRows = prefix.Length == 0 && columns.Length > 0 && columns[0] == "head" && values.Length > 0
                && values[0].ValueKind == JsonValueKind.String;
            for (int c = 0; c < values.Length; c++)
            {
                if (headRows && c == 0) continue;
                var name =
                    headRows ? $"{values[0].GetString()} {Label(columns, c)}" : $"{prefix}row {r}, {Label(columns, c)}";
                cells[name] = values[c];
            }
            r++;
        }
    }

    static void Walk(Dictionary<string, JsonElement?> cells, JsonElement value, string path)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in value.EnumerateObject()) Walk(cells, p.Value, $"{path}.{p.Name}");
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var v in value.EnumerateArray()) Walk(cells, v, $"{path}[{i++}]");
                break;
            default:
                cells[path] = value;
                break;
        }
    }

    static bool Same(JsonElement? a, JsonElement? b, double tolerance)
    {
        if (a is not { } x || b is not { } y) return a is null && b is null;
        if (x.ValueKind == JsonValueKind.Number && y.ValueKind == JsonValueKind.Number)
            return Math.Abs(x.GetDouble() - y.GetDouble()) <= tolerance;
        return x.ValueKind == y.ValueKind && x.GetRawText() == y.GetRawText();
    }

    static string Show(JsonElement? value) => value switch
    {
        null => "(none)",
        { ValueKind: JsonValueKind.Number } v => Numbers.Text(v.GetDouble()),
        { ValueKind: JsonValueKind.Null } => "null",
        { ValueKind: JsonValueKind.String } v => v.GetString() ?? "",
        { } v => v.GetRawText(),
    };

    static string Label(string[] labels, int i) =>
        i < labels.Length ? labels[i] : i.ToString(CultureInfo.InvariantCulture);

    static string[] Strings(JsonElement element, string name) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString() ?? "" : x.GetRawText())
                .ToArray()
            : [];

    static JsonElement? Child(JsonElement element, string name) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

    static string? Text(JsonElement? element, string name) =>
        element is { ValueKind: JsonValueKind.Object } e && e.TryGetProperty(name, out var v)
            ? v.ValueKind == JsonValueKind.String
                ? v.GetString()
                : v.ValueKind == JsonValueKind.Null ? null : v.GetRawText()
            : null;

    static IReadOnlyList<JsonElement> Items(JsonElement element, string name) =>
        element.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? [.. v.EnumerateArray()] : [];

    static Dictionary<string, string> Files(JsonElement? provenance)
    {
        var files = new Dictionary<string, string>();
        if (provenance is { } p && p.TryGetProperty("files", out var list) && list.ValueKind == JsonValueKind.Array)
            foreach (var f in list.EnumerateArray())
                if (Text(f, "path") is { } path) files[$"{Text(f, "role")} {path}"] = Text(f, "sha256") ?? "";
        return files;
    }
}
