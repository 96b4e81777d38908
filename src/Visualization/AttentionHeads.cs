using System.Globalization;
using System.Text;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>
/// CircuitsVis <c>attention_heads</c>-style view: one heatmap per head with the tokens labelled on
/// both axes (queries down the side, keys along the top); hovering a cell shows the weight and
/// highlights its two tokens. Labels are left out when there are too many tokens to read them.
/// </summary>
public static class AttentionHeads
{
    const int PlotPx = 420;      // the side of each heatmap when there are many tokens
    const double MaxCellPx = 22; // ... and the cell size cap when there are few
    const double MinLabelCellPx = 8;

    public static HtmlContent Render(string[] tokens, float[,,] pattern, string[]? headNames = null,
        string? title = null) =>
        HtmlPage.Wrap(title ?? "Attention heads", RenderFragment(tokens, pattern, headNames, title));

    public static HtmlContent RenderFragment(string[] tokens, float[,,] pattern, string[]? headNames = null,
        string? title = null)
    {
        var data = new AttentionData(tokens, pattern, headNames);
        var id = Figure.NewId("ah");
        var cell = Math.Min(MaxCellPx, (double)PlotPx / data.N);
        var side = (int)Math.Round(cell * data.N);
        var labels = cell >= MinLabelCellPx;
        var font = Math.Min(12, cell - 2).ToString("0.#", CultureInfo.InvariantCulture);
        var cellPx = cell.ToString("0.###", CultureInfo.InvariantCulture);
        var shown = tokens.Select(t => Html.Escape(TokenText.Display(t))).ToArray();

        var body = new StringBuilder();
        body.Append(Figure.Title(title))
            .Append("<div class=\"lens-note\">rows: query (destination) · columns: key (source)")
            .Append(labels ? "" : $" · {data.N} tokens: labels hidden, hover a cell to see its tokens").Append("</div>")
            .Append(data.ColorBar())
            .Append("<div class=\"lens-ah-heads\">");
        for (var h = 0; h < data.Heads; h++)
        {
            body.Append(CultureInfo.InvariantCulture,
                $"<div class=\"lens-ah-head\" data-h=\"{h}\"><div " +
                $"class=\"lens-ah-name\">{Html.Escape(data.Names[h])}</div>")
                .Append(CultureInfo.InvariantCulture,
                $"<div class=\"lens-ah-plot\" style=\"grid-template-columns:auto {side}px;font-size:{font}px\">");
            if (labels)
            {
                body.Append("<div></div><div class=\"lens-ah-cols\">");
                for (var k = 0; k < data.N; k++)
                    body.Append(CultureInfo.InvariantCulture, $"<span style=\"width:{cellPx}px\">{shown[k]}</span>");
                body.Append("</div><div class=\"lens-ah-rows\">");
                for (var q = 0; q < data.N; q++)
                    body.Append(CultureInfo.InvariantCulture,
                        $"<span style=\"height:{cellPx}px;line-height:{cellPx}px\">{shown[q]}</span>");
                body.Append("</div>");
            }
            else body.Append("<div></div>");
            body.Append(CultureInfo.InvariantCulture,
                $"<canvas style=\"width:{side}px;height:{side}px\"></canvas></div></div>");
        }
        body.Append("</div>");
        // Labels are read from the spans; with no labels the script needs the tokens themselves.
        var tokenJson = labels ? "null" : Html.Json(tokens.Select(TokenText.Display).ToArray());
        return Figure.Fragment(id, "lens-ah", body.ToString(), Css, AttentionData.Script + Script,
            $"LensViz.attentionHeads(\"{id}\", {data.ToJson()}, {tokenJson})");
    }

    /// <param name="pattern">[head, query, key] or [1, head, query, key] (a batch of one).</param>
    public static HtmlContent Render(string[] tokens, torch.Tensor pattern, string[]? headNames = null,
        string? title = null) =>
        Render(tokens, TensorArrays.ToArray3(pattern, nameof(pattern), dropBatchOfOne: true), headNames, title);

    public static HtmlContent RenderFragment(string[] tokens, torch.Tensor pattern, string[]? headNames = null,
        string? title = null) =>
        RenderFragment(tokens, TensorArrays.ToArray3(pattern, nameof(pattern), dropBatchOfOne: true), headNames, title);

    const string Css = """
.lens-ah .lens-ah-heads{display:flex;flex-wrap:wrap;gap:22px}
.lens-ah .lens-ah-name{font-weight:600;margin-bottom:4px}
.lens-ah .lens-ah-plot{display:grid;font-family:ui-monospace,Menlo,Consolas,monospace}
.lens-ah canvas{image-rendering:pixelated;outline:1px solid #ccc;cursor:crosshair}
.lens-ah .lens-ah-cols{display:flex;align-items:flex-end;max-height:110px;overflow:hidden}
.lens-ah .lens-ah-cols span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:pre;overflow:hidden;text-overflow:ellipsis;max-height:110px;text-align:left;flex:none}
.lens-ah .lens-ah-rows{display:flex;flex-direction:column;align-items:flex-end;padding-right:4px;max-width:130px}
.lens-ah .lens-ah-rows span{white-space:pre;overflow:hidden;text-overflow:ellipsis;max-width:130px;flex:none}
.lens-ah .lens-ah-plot span.hl{background:#fdd0a2;font-weight:600}
""";

    const string Script = """
if (!LensViz.attentionHeads) LensViz.attentionHeads = (id, d, tokens) => {
  const t0 = performance.now(), root = document.getElementById(id), P = LensViz.pattern(d), n = d.n, tip = LensViz.tip(root);
  root.querySelectorAll('.lens-ah-head').forEach(head => {
    const h = +head.dataset.h, canvas = head.querySelector('canvas'), name = head.querySelector('.lens-ah-name').textContent;
    const cols = [...head.querySelectorAll('.lens-ah-cols span')], rows = [...head.querySelectorAll('.lens-ah-rows span')];
    const text = (labels, i) => (tokens ? tokens[i] : labels[i].textContent);
    let lit = [];
    P.draw(canvas, h, P.sizeFor(canvas));
    canvas.addEventListener('mousemove', e => {
      const r = canvas.getBoundingClientRect();
      const q = Math.max(0, Math.min(n - 1, Math.floor((e.clientY - r.top) / r.height * n)));
      const k = Math.max(0, Math.min(n - 1, Math.floor((e.clientX - r.left) / r.width * n)));
      lit.forEach(s => s.classList.remove('hl'));
      lit = [rows[q], cols[k]].filter(Boolean);
      lit.forEach(s => s.classList.add('hl'));
      const v = d.causal && k > q ? '0 (masked)' : LensViz.fmt(P.value(P.at(h, q, k)));
      tip.show(`${name}: query ${q} "${text(rows, q)}" → key ${k} "${text(cols, k)}"\n${v}`, e.clientX, e.clientY, 'canvas');
      root.dataset.hover = `${h},${q},${k}`;
    });
    canvas.addEventListener('mouseleave', () => { lit.forEach(s => s.classList.remove('hl')); lit = []; tip.hide(); });
  });
  root.dataset.ready = '1';
  root.dataset.initMs = (performance.now() - t0).toFixed(1);
};
""";
}
