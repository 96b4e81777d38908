using System.Text;

namespace Lens.Visualization;

/// <summary>
/// HTML produced by a renderer: either a whole self-contained page (<c>Render</c>) or a fragment
/// (<c>RenderFragment</c>) that can be placed in a report or a notebook cell. <see cref="Notebook.Register"/>
/// makes .NET Interactive display it as HTML.
/// </summary>
public sealed record HtmlContent(string Html)
{
    public string ToHtml() => Html;

    public override string ToString() => Html;

    /// <summary>True for a complete document (starts with a doctype), false for a fragment.</summary>
    public bool IsPage => Html.StartsWith("<!DOCTYPE", StringComparison.OrdinalIgnoreCase);

    /// <summary>Writes the HTML as UTF-8 (no byte order mark), creating the folder if needed.</summary>
    public void Save(string path) => Lens.IO.AtomicFile.WriteAllText(path, Html);
}
