using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Lens.Visualization;

/// <summary>
/// An attention pattern [head, query, key] checked against its tokens and packed for the browser:
/// each value quantised to one byte on the figure's colour scale (base64), and only the lower
/// triangle when everything above the diagonal is exactly zero (a causal pattern), which halves the size.
/// 1024 tokens x 12 heads become about 8 MB of base64.
/// </summary>
internal sealed class AttentionData
{
    public int Heads { get; }
    public int N { get; }
    public bool Causal { get; }
    /// <summary>"seq" (values in [0, hi], white to blue) or "div" (signed, symmetric, blue-white-red).</summary>
    public string Map { get; }
    public double Lo { get; }
    public double Hi { get; }
    /// <summary>The byte that stands for 0 (masked and empty cells).</summary>
    public byte Zero { get; }
    public string[] Names { get; }
    readonly float[,,] _pattern;

    public AttentionData(string[] tokens, float[,,] pattern, string[]? headNames)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(pattern);
        Heads = pattern.GetLength(0);
        N = pattern.GetLength(1);
        var nKeys = pattern.GetLength(2);
        if (Heads == 0 || N == 0)
            throw new ArgumentException($"pattern is empty: [{Heads} heads, {N} queries, {nKeys} keys].",
                nameof(pattern));
        if (N != nKeys || tokens.Length != N)
            throw new ArgumentException(
                $"pattern is [{Heads} heads, {N} queries, {nKeys} keys] but there are {tokens.Length} tokens; " +
                "queries, keys and tokens must match.", nameof(pattern));
        headNames ??= Enumerable.Range(0, Heads).Select(h => $"H{h}").ToArray();
        if (headNames.Length != Heads)
            throw new ArgumentException($"{headNames.Length} head names for {Heads} heads.", nameof(headNames));
        Names = headNames;
        _pattern = pattern;

        double min = 0, max = 0;
        var causal = true;
        var flat = Flat(pattern);
        for (var row = 0; row < Heads * N; row++) // row = head * N + query
        {
            var q = row % N;
            var values = flat.Slice(row * N, N);
            for (var k = 0; k < values.Length; k++)
            {
                var v = values[k];
                if (!float.IsFinite(v))
                    throw new ArgumentException(
                        $"pattern[{row / N}, {q}, {k}] is {v}; attention values must be finite.", nameof(pattern));
                if (v < min) min = v;
                else if (v > max) max = v;
                if (k > q && v != 0) causal = false;
            }
        }
        Causal = causal;
        if (min < 0)
        {
            var m = Math.Max(-min, max);
            (Map, Lo, Hi) = ("div", -m, m);
        }
        else (Map, Lo, Hi) = ("seq", 0, max <= 1 ? 1 : max); // probabilities keep an absolute scale
        Zero = Quantize(0);
    }

    public byte Quantize(double v) => Quantize(v, Lo, 255 / (Hi - Lo));

    static byte Quantize(double v, double lo, double scale) => (byte)Math.Clamp((int)((v - lo) * scale + 0.5), 0, 255);

    /// <summary>The array's elements in memory order (row-major), without copying.</summary>
    static ReadOnlySpan<float> Flat(float[,,] a) =>
        MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<byte, float>(ref MemoryMarshal.GetArrayDataReference(a)),
            a.Length);

    /// <summary>The JSON object the figure scripts read (see LensViz.pattern).</summary>
    public string ToJson()
    {
        var flat = Flat(_pattern);
        var perHead = Causal ? N * (N + 1) / 2 : N * N;
        var bytes = new byte[(long)Heads * perHead];
        var scale = 255 / (Hi - Lo);
        long o = 0;
        for (var row = 0; row < Heads * N; row++)   // row = head * N + query
        {
            var values = flat.Slice(row * N, Causal ? row % N + 1 : N);
            foreach (var v in values) bytes[o++] = Quantize(v, Lo, scale);
        }
        var sb = new StringBuilder(bytes.Length * 4 / 3 + 200);
        sb.Append("{\"n\":").Append(N).Append(",\"heads\":").Append(Heads)
          .Append(",\"causal\":").Append(Causal ? "true" : "false")
          .Append(",\"map\":\"").Append(Map).Append("\",\"lo\":").Append(Html.Num(Lo)).Append(",\"hi\":")
            .Append(Html.Num(Hi))
          .Append(",\"zero\":").Append(Zero)
          .Append(",\"data\":\"").Append(Convert.ToBase64String(bytes)).Append("\"}");
        return sb.ToString();
    }

    /// <summary>The colour bar for this pattern's scale.</summary>
    public string ColorBar() => Map == "seq"
        ? Figure.ColorBar(ColorMap.Sequential, 0, 1, Html.Value(Lo), Html.Value(Hi))
        : Figure.ColorBar(ColorMap.Diverging, -1, 1, Html.Value(Lo), Html.Value(Hi), "0");

    /// <summary>Decoding and drawing shared by both attention views (guarded: defined once per page).</summary>
    public const string Script = """
if (!LensViz.pattern) LensViz.pattern = d => {
  const A = LensViz.bytes(d.data), n = d.n, z = d.zero, tri = n * (n + 1) / 2, lut = LensViz.lut(d.map);
  // The byte for head h, query q, key k; causal data holds only k <= q, row by row.
  const at = d.causal ? (h, q, k) => (k > q ? z : A[h * tri + q * (q + 1) / 2 + k])
                      : (h, q, k) => A[(h * n + q) * n + k];
  const value = b => d.lo + (b / 255) * (d.hi - d.lo);
  // Draws head h into a size x size canvas; when size < n each pixel shows its block's most extreme value.
  function draw(canvas, h, size) {
    canvas.width = canvas.height = size;
    const ctx = canvas.getContext('2d'), img = ctx.createImageData(size, size), px = img.data;
    for (let i = 0; i < size; i++) {
      const r0 = Math.floor(i * n / size), r1 = Math.max(r0 + 1, Math.floor((i + 1) * n / size));
      for (let j = 0; j < size; j++) {
        const c0 = Math.floor(j * n / size), c1 = Math.max(c0 + 1, Math.floor((j + 1) * n / size));
        let best = z, far = 0;
        if (!(d.causal && c0 >= r1))
          for (let q = r0; q < r1; q++)
            for (let k = c0; k < c1; k++) {
              const b = at(h, q, k), dist = Math.abs(b - z);
              if (dist > far) { far = dist; best = b; }
            }
        const o = 4 * (i * size + j);
        px[o] = lut[3 * best]; px[o + 1] = lut[3 * best + 1]; px[o + 2] = lut[3 * best + 2]; px[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }
  // One canvas pixel per token when they fit on screen, else one per screen pixel: the browser
  // shrinking a larger canvas would drop thin lines (a previous-token diagonal) that pooling keeps.
  // (A figure not laid out yet, e.g. in a closed <details>, has no width: then draw at up to 1024.)
  const sizeFor = canvas => {
    const w = Math.round(canvas.clientWidth * (window.devicePixelRatio || 1));
    return Math.min(n, w > 0 ? Math.max(16, w) : 1024);
  };
  return { n, zero: z, at, value, draw, sizeFor, lut };
};
""";
}
