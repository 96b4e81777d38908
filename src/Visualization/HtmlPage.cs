using System.Text;

namespace Lens.Visualization;

/// <summary>Wraps fragments into one self-contained page (UTF-8, no external resources).</summary>
public static class HtmlPage
{
    public static HtmlContent Wrap(string title, params HtmlContent[] fragments)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
          .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
          .Append("<title>").Append(Html.Escape(title)).Append("</title>\n")
          .Append("<style>").Append(PageCss).Append("</style>\n</head>\n<body>\n");
        foreach (var f in fragments)
        {
            if (f.IsPage)
                throw new ArgumentException("HtmlPage.Wrap takes fragments (RenderFragment), not whole pages (Render).",
                    nameof(fragments));
            sb.Append(f.Html).Append('\n');
        }
        sb.Append("</body>\n</html>\n");
        return new HtmlContent(sb.ToString());
    }

    const string PageCss = """
body{margin:16px auto;max-width:1180px;padding:0 16px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fff}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e4e4e4;padding-bottom:3px}
pre{background:#f6f8fa;border:1px solid #e4e4e4;border-radius:4px;padding:10px;overflow:auto;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
""";
}
