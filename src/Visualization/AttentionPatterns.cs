using System.Text;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>
/// CircuitsVis <c>attention_patterns</c>-style view: a thumbnail per head (click to select, hover to
/// preview), a large view of the selected head, and the tokens below; hovering a token colours the
/// tokens it attends to (its row, blue) and the tokens that attend to it (its column, orange).
/// Everything is drawn on canvases from one compact byte array, so 1024 tokens x 12 heads stay responsive.
/// </summary>
public static class AttentionPatterns
{
    /// <param name="tokens">One string per position.</param>
    /// <param name="pattern">[head, query, key] attention weights.</param>
    /// <param name="headNames">One name per head, e.g. <see cref="HeadNames.ForLayer"/>; H0.. when null.</param>
    /// <param name="title">Shown above the figure and as the page title.</param>
    public static HtmlContent Render(string[] tokens, float[,,] pattern, string[]? headNames = null,
        string? title = null) =>
        HtmlPage.Wrap(title ?? "Attention patterns", RenderFragment(tokens, pattern, headNames, title));

    public static HtmlContent RenderFragment(string[] tokens, float[,,] pattern, string[]? headNames = null,
        string? title = null)
    {
        var data = new AttentionData(tokens, pattern, headNames);
        var id = Figure.NewId("ap");
        var cols = (int)Math.Ceiling(Math.Sqrt(data.Heads));
        var body = new StringBuilder(tokens.Length * 48 + 2048);
        body.Append(Figure.Title(title))
            .Append("<div class=\"lens-ap-top\">")
            .Append(CultureInfo.InvariantCulture,
            $"<div class=\"lens-ap-grid\" style=\"grid-template-columns:repeat({cols},76px)\">");
        for (var h = 0; h < data.Heads; h++)
            body.Append(CultureInfo.InvariantCulture, $"<div class=\"lens-ap-cell\" data-h=\"{h}\"><canvas></canvas>")
                .Append(CultureInfo.InvariantCulture,
                $"<div class=\"lens-ap-name\">{Html.Escape(data.Names[h])}</div></div>");
        body.Append("</div><div class=\"lens-ap-main\">")
            .Append("<div class=\"lens-ap-head\">Head <b class=\"lens-ap-headname\"></b> <span " +
            "class=\"lens-ap-mode\"></span></div>")
            .Append("<div class=\"lens-ap-big\"><canvas></canvas><div class=\"lens-ap-row\"></div><div " +
            "class=\"lens-ap-col\"></div></div>")
            .Append("<div class=\"lens-note\">rows: query (destination) · columns: key (source)</div>")
            .Append(data.ColorBar())
            .Append("</div></div>")
            .Append("<div class=\"lens-note\">Hover a token: <span class=\"lens-swatch\" " +
            "style=\"background:rgb(66,146,198)\"></span>where it attends (its row) · ")
            .Append("<span class=\"lens-swatch\" style=\"background:rgb(241,105,19)\"></span>what attends to it (its " +
            "column). Click a token to pin it.</div>")
            .Append("<div class=\"lens-ap-tokens\">");
        for (var i = 0; i < tokens.Length; i++) body.Append(Figure.Token(tokens[i], $" data-i=\"{i}\""));
        body.Append("</div>");
        return Figure.Fragment(id, "lens-ap", body.ToString(), Css, AttentionData.Script + Script,
            $"LensViz.attentionPatterns(\"{id}\", {data.ToJson()})");
    }

    /// <param name="pattern">[head, query, key] or [1, head, query, key] (a batch of one).</param>
    public static HtmlContent Render(string[] tokens, torch.Tensor pattern, string[]? headNames = null,
        string? title = null) =>
        Render(tokens, TensorArrays.ToArray3(pattern, nameof(pattern), dropBatchOfOne: true), headNames, title);

    public static HtmlContent RenderFragment(string[] tokens, torch.Tensor pattern, string[]? headNames = null,
        string? title = null) =>
        RenderFragment(tokens, TensorArrays.ToArray3(pattern, nameof(pattern), dropBatchOfOne: true), headNames, title);

    const string Css = """
.lens-ap .lens-ap-top{display:flex;gap:20px;align-items:flex-start;flex-wrap:wrap}
.lens-ap .lens-ap-grid{display:grid;gap:6px;align-content:start}
.lens-ap .lens-ap-cell{cursor:pointer;text-align:center;padding:3px;border:2px solid transparent;border-radius:4px}
.lens-ap .lens-ap-cell:hover{border-color:#bbb}
.lens-ap .lens-ap-cell.sel{border-color:#2171b5}
.lens-ap .lens-ap-cell canvas{width:64px;height:64px;border:1px solid #ddd;display:block;margin:auto}
.lens-ap .lens-ap-cell canvas,.lens-ap .lens-ap-big canvas{image-rendering:pixelated}
.lens-ap .lens-ap-name{font-size:11px;color:#444;margin-top:2px}
.lens-ap .lens-ap-head{margin-bottom:4px}
.lens-ap .lens-ap-mode{color:#888}
.lens-ap .lens-ap-big{position:relative;width:440px;height:440px;border:1px solid #ccc}
.lens-ap .lens-ap-big canvas{width:100%;height:100%;display:block;cursor:crosshair}
.lens-ap .lens-ap-row,.lens-ap .lens-ap-col{position:absolute;display:none;pointer-events:none;outline:1px solid rgba(230,85,13,.9);background:rgba(230,85,13,.12)}
.lens-ap .lens-ap-row{left:0;right:0}.lens-ap .lens-ap-col{top:0;bottom:0}
.lens-ap .lens-ap-tokens{margin-top:6px;max-height:360px;overflow-y:auto;line-height:1.9}
.lens-ap .lens-tok.lens-focus{outline:2px solid #333}
.lens-ap .lens-tok.lens-key{outline:2px dashed #e6550d}
""";

    const string Script = """
if (!LensViz.attentionPatterns) LensViz.attentionPatterns = (id, d) => {
  const t0 = performance.now(), root = document.getElementById(id), P = LensViz.pattern(d), n = d.n;
  const cells = [...root.querySelectorAll('.lens-ap-cell')], grid = root.querySelector('.lens-ap-grid');
  const list = root.querySelector('.lens-ap-tokens'), toks = [...list.querySelectorAll('.lens-tok')];
  const big = root.querySelector('.lens-ap-big canvas'), rowBand = root.querySelector('.lens-ap-row'), colBand = root.querySelector('.lens-ap-col');
  const headName = root.querySelector('.lens-ap-headname'), mode = root.querySelector('.lens-ap-mode');
  const rowLut = P.lut, colLut = d.map === 'seq' ? LensViz.lut('orange') : P.lut, tip = LensViz.tip(root);
  let selected = 0, preview = -1, focus = -1, pinned = -1, key = -1, lastFocus = -2, lastKey = -1;
  const shown = () => (preview >= 0 ? preview : selected);
  const clamp = i => Math.max(0, Math.min(n - 1, i));

  function showHead() {
    const h = shown();
    P.draw(big, h, P.sizeFor(big));
    headName.textContent = cells[h].querySelector('.lens-ap-name').textContent;
    mode.textContent = h !== selected ? '(preview; click to select)' : '';
    cells.forEach((c, i) => c.classList.toggle('sel', i === selected));
    root.dataset.shownHead = h;
    root.dataset.selectedHead = selected;
    lastFocus = -2;
    paint();
  }

  // Colours every token by the focused token's row (where it attends) and column (what attends to it).
  function paint() {
    if (focus === lastFocus && key === lastKey) return;
    const t = performance.now(), h = shown(), f = focus, z = P.zero;
    for (let k = 0; k < n; k++) {
      let bg = '', fg = '', sh = '';
      if (f >= 0) {
        const a = P.at(h, f, k), b = P.at(h, k, f);
        if (a !== z) { bg = LensViz.css(rowLut, a); if (LensViz.dark(rowLut, a)) fg = '#fff'; }
        if (b !== z && k !== f) {
          if (bg) sh = 'inset 0 -4px 0 ' + LensViz.css(colLut, b);
          else { bg = LensViz.css(colLut, b); if (LensViz.dark(colLut, b)) fg = '#fff'; }
        }
      }
      const s = toks[k].style;
      s.background = bg; s.color = fg; s.boxShadow = sh;
    }
    if (lastFocus >= 0) toks[lastFocus].classList.remove('lens-focus');
    if (lastKey >= 0) toks[lastKey].classList.remove('lens-key');
    if (f >= 0) toks[f].classList.add('lens-focus');
    if (key >= 0) toks[key].classList.add('lens-key');
    band(rowBand, f, 'top', 'height');
    band(colBand, f, 'left', 'width');
    lastFocus = f; lastKey = key;
    root.dataset.focusToken = f;
    root.dataset.paintMs = (performance.now() - t).toFixed(1);
  }
  function band(el, i, pos, size) {
    el.style.display = i < 0 ? 'none' : 'block';
    el.style[pos] = (100 * i / n) + '%';
    el.style[size] = `max(1px, ${100 / n}%)`;
  }

  cells.forEach((c, h) => {
    P.draw(c.querySelector('canvas'), h, Math.min(n, 64));
    c.addEventListener('mouseenter', () => { preview = h; showHead(); });
    c.addEventListener('click', () => { selected = h; preview = -1; showHead(); });
  });
  grid.addEventListener('mouseleave', () => { preview = -1; showHead(); });

  const tokenAt = e => e.target.closest && e.target.closest('.lens-tok');
  list.addEventListener('mouseover', e => { const el = tokenAt(e); if (el) { focus = +el.dataset.i; key = -1; paint(); } });
  list.addEventListener('mouseleave', () => { focus = pinned; paint(); });
  list.addEventListener('click', e => {
    const el = tokenAt(e);
    if (el) { const i = +el.dataset.i; pinned = pinned === i ? -1 : i; focus = i; paint(); root.dataset.pinnedToken = pinned; }
  });

  big.addEventListener('mousemove', e => {
    const r = big.getBoundingClientRect();
    const q = clamp(Math.floor((e.clientY - r.top) / r.height * n)), k = clamp(Math.floor((e.clientX - r.left) / r.width * n));
    focus = q; key = k; paint();
    const v = d.causal && k > q ? '0 (masked)' : LensViz.fmt(P.value(P.at(shown(), q, k)));
    tip.show(`query ${q} "${toks[q].textContent}" → key ${k} "${toks[k].textContent}"\n${v}`, e.clientX, e.clientY, 'canvas');
  });
  big.addEventListener('mouseleave', () => { tip.hide(); focus = pinned; key = -1; paint(); });

  showHead();
  root.dataset.ready = '1';
  root.dataset.initMs = (performance.now() - t0).toFixed(1);
};
""";
}
