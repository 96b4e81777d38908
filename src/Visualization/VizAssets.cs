namespace Lens.Visualization;

/// <summary>The CSS and JavaScript every figure shares (hand-written, no dependencies).</summary>
internal static class VizAssets
{
    public const string CommonCss = """
.lens-viz{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:10px 0;position:relative}
.lens-viz .lens-title{font-weight:600;font-size:15px;margin:2px 0 8px}
.lens-viz .lens-note{color:#666;font-size:12px;margin:6px 0}
.lens-viz .lens-tok{display:inline-block;white-space:pre;font:12.5px/1.5 ui-monospace,Menlo,Consolas,monospace;padding:0 2px;margin:1px;border:1px solid #e2e2e2;border-radius:3px;cursor:default}
.lens-viz .lens-legend{display:flex;align-items:center;gap:6px;font-size:12px;color:#444;margin:8px 0}
.lens-viz .lens-bar{position:relative;display:inline-block;width:180px;height:12px;border:1px solid #ccc;border-radius:2px}
.lens-viz .lens-bar-mid{position:absolute;left:50%;top:13px;transform:translateX(-50%);font-size:11px}
.lens-viz .lens-swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px;margin-right:4px}
.lens-tip{position:fixed;z-index:1000;display:none;pointer-events:none;background:rgba(28,28,28,.93);color:#fff;padding:4px 7px;border-radius:4px;font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;white-space:pre;max-width:560px;overflow:hidden}
""";

    /// <summary>The shared library: colour tables, base64 bytes, number formatting, tooltips.</summary>
    public static readonly string CommonJs = """
if (!window.LensViz) window.LensViz = (() => {
  const tables = { seq: 'SEQ', div: 'DIV', orange: 'ORANGE' }, luts = {};
  // 256 colours as a Uint8Array of r,g,b; index i stands for lo + i/255 (hi - lo) of the figure's scale.
  function lut(name) {
    if (!luts[name]) {
      const hex = tables[name], a = new Uint8Array(768);
      for (let i = 0; i < 768; i++) a[i] = parseInt(hex.substr(2 * i, 2), 16);
      luts[name] = a;
    }
    return luts[name];
  }
  const css = (t, i) => `rgb(${t[3 * i]},${t[3 * i + 1]},${t[3 * i + 2]})`;
  const dark = (t, i) => 0.299 * t[3 * i] + 0.587 * t[3 * i + 1] + 0.114 * t[3 * i + 2] < 140;
  function bytes(b64) {
    const s = atob(b64), a = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
    return a;
  }
  function fmt(v) {
    if (v === null || Number.isNaN(v)) return 'NaN';
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return String(+v.toFixed(a >= 100 ? 1 : 3));
  }
  // One tooltip per figure; `owner` lets a canvas handler and the [data-tip] handler share it.
  function tip(root) {
    if (!root.lensTip) {
      const el = document.createElement('div');
      el.className = 'lens-tip';
      root.appendChild(el);
      root.lensTip = {
        owner: null,
        show(text, x, y, owner) {
          this.owner = owner;
          el.textContent = text;
          el.style.display = 'block';
          el.style.left = Math.max(0, Math.min(x + 14, innerWidth - el.offsetWidth - 4)) + 'px';
          el.style.top = Math.max(0, Math.min(y + 14, innerHeight - el.offsetHeight - 4)) + 'px';
        },
        hide() { this.owner = null; el.style.display = 'none'; },
      };
    }
    return root.lensTip;
  }
  // Elements with a data-tip attribute show it on hover.
  function tips(root) {
    const t = tip(root);
    root.addEventListener('mousemove', e => {
      const el = e.target.closest && e.target.closest('[data-tip]');
      if (el && root.contains(el)) t.show(el.dataset.tip, e.clientX, e.clientY, 'tips');
      else if (t.owner === 'tips') t.hide();
    });
    root.addEventListener('mouseleave', () => t.hide());
  }
  // Figures drawn entirely in HTML only need their tooltips wired up.
  function plain(id) {
    const root = document.getElementById(id);
    tips(root);
    root.dataset.ready = '1';
  }
  return { lut, css, dark, bytes, fmt, tip, tips, plain };
})();
"""
        .Replace("'SEQ'", $"'{ColorMap.LookupTableHex(ColorMap.Sequential, 0, 1)}'")
        .Replace("'DIV'", $"'{ColorMap.LookupTableHex(ColorMap.Diverging, -1, 1)}'")
        .Replace("'ORANGE'", $"'{ColorMap.LookupTableHex(ColorMap.Orange, 0, 1)}'");
}
