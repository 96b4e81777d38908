using System.Text;

namespace Lens.Visualization;

/// <summary>
/// One HTML page for a whole experiment run: a title, the model, the experiment's source text, and
/// sections (text, tables, figures) in the order they are added. Figures are fragments
/// (<c>RenderFragment</c>); any number of them, of any kind, can share the page.
/// </summary>
public sealed class Report(string title)
{
    readonly List<string> _sections = [];
    string? _model, _source, _sourceName;

    public string Title { get; } = title ?? throw new ArgumentNullException(nameof(title));

    public Report SetModel(string modelName) { _model = modelName; return this; }

    /// <param name="source">The experiment text as written; shown escaped in a &lt;pre&gt;.</param>
    /// <param name="name">Where it came from (a file name), shown in the heading.</param>
    public Report SetSource(string source, string? name = null) { _source = source; _sourceName = name; return this; }

    public Report AddText(string text)
    {
        _sections.Add($"<p>{Html.Escape(text)}</p>");
        return this;
    }

    public Report AddTable(string title, string[] header, string[][] rows)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(rows);
        for (var r = 0; r < rows.Length; r++)
            if (rows[r] is null || rows[r].Length != header.Length)
                throw new ArgumentException($"table \"{title}\": row {r} has {rows[r]?.Length ?? 0} cells but the " +
                    $"header has {header.Length}.", nameof(rows));
        var numeric = Enumerable.Range(0, header.Length)
            .Select(c => rows.Length > 0 && rows.All(r => TextTable.IsNumber(r[c]))).ToArray();
        var sb = new StringBuilder();
        sb.Append(Heading(title)).Append("<table class=\"lens-table\"><thead><tr>");
        foreach (var h in header) sb.Append(CultureInfo.InvariantCulture, $"<th>{Html.Escape(h)}</th>");
        sb.Append("</tr></thead><tbody>");
        foreach (var row in rows)
        {
            sb.Append("<tr>");
            for (var c = 0; c < row.Length; c++)
                sb.Append(numeric[c] ? "<td class=\"num\">" : "<td>").Append(Html.Escape(row[c])).Append("</td>");
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table>");
        _sections.Add(sb.ToString());
        return this;
    }

    /// <param name="figure">A fragment from any renderer's <c>RenderFragment</c>.</param>
    public Report AddFigure(string title, HtmlContent figure)
    {
        ArgumentNullException.ThrowIfNull(figure);
        if (figure.IsPage)
            throw new ArgumentException($"figure \"{title}\" is a whole page; add the renderer's RenderFragment " +
                $"output instead.", nameof(figure));
        _sections.Add(Heading(title) + figure.Html);
        return this;
    }

    public HtmlContent Render()
    {
        var body = new StringBuilder();
        body.Append("<div class=\"lens-report\">")
            .Append(CultureInfo.InvariantCulture, $"<h1>{Html.Escape(Title)}</h1>");
        if (_model is not null)
            body.Append(CultureInfo.InvariantCulture,
                $"<div class=\"lens-meta\">Model: <b>{Html.Escape(_model)}</b></div>");
        if (_source is not null)
            body.Append("<details class=\"lens-source\" open><summary>Experiment")
                .Append(_sourceName is null ? "" : $" <code>{Html.Escape(_sourceName)}</code>")
                .Append(CultureInfo.InvariantCulture, $"</summary><pre>{Html.Escape(_source)}</pre></details>");
        foreach (var s in _sections) body.Append("<section>").Append(s).Append("</section>\n");
        body.Append("</div><style>").Append(Css).Append("</style>");
        return HtmlPage.Wrap(Title, new HtmlContent(body.ToString()));
    }

    public void Save(string path) => Render().Save(path);

    static string Heading(string? title) => string.IsNullOrWhiteSpace(title) ? "" : $"<h2>{Html.Escape(title)}</h2>";

    const string Css = """
.lens-report .lens-meta{color:#555;margin-bottom:10px}
.lens-report details.lens-source summary{cursor:pointer;color:#444;margin:6px 0}
.lens-report table.lens-table{border-collapse:collapse;font-size:13px;margin:6px 0}
.lens-report table.lens-table th,.lens-report table.lens-table td{border:1px solid #e2e2e2;padding:3px 9px;text-align:left;white-space:pre}
.lens-report table.lens-table th{background:#f6f6f6;font-weight:600}
.lens-report table.lens-table td.num{text-align:right;font-variant-numeric:tabular-nums}
""";
}
