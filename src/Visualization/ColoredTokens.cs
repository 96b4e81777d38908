using System.Text;
using TorchSharp;

namespace Lens.Visualization;

/// <summary>
/// CircuitsVis <c>colored_tokens</c>: each token's background shows its value on a diverging scale
/// centred on 0 (blue negative, red positive), with a legend; hovering a token shows its value.
/// </summary>
public static class ColoredTokens
{
    /// <param name="label">What the values are (e.g. "logit diff"); the title.</param>
    /// <param name="maxAbs">The value drawn at full colour; the largest |value| when null.</param>
    public static HtmlContent Render(string[] tokens, float[] values, string? label = null, float? maxAbs = null) =>
        HtmlPage.Wrap(label ?? "Colored tokens", RenderFragment(tokens, values, label, maxAbs));

    public static HtmlContent RenderFragment(string[] tokens, float[] values, string? label = null,
        float? maxAbs = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(values);
        if (tokens.Length != values.Length)
            throw new ArgumentException($"{tokens.Length} tokens but {values.Length} values.", nameof(values));
        if (maxAbs is { } given && !(given > 0))
            throw new ArgumentException($"maxAbs must be positive, got {given}.", nameof(maxAbs));
        var scale = maxAbs ?? values.Where(float.IsFinite).Select(Math.Abs).DefaultIfEmpty(0f).Max();
        if (scale == 0) scale = 1;

        var body = new StringBuilder(tokens.Length * 120 + 512);
        body.Append(Figure.Title(label)).Append("<div class=\"lens-ct-tokens\">");
        for (var i = 0; i < tokens.Length; i++)
        {
            var v = values[i];
            var c = ColorMap.DivergingFor(v, scale);
            var tip = $"{i} \"{TokenText.Display(tokens[i])}\": {Html.Value(v)}";
            body.Append(Figure.Token(tokens[i],
                $" data-i=\"{i}\" data-v=\"{Html.Num(v)}\" data-tip=\"{Html.Escape(tip)}\" " +
                $"style=\"background:{c.Css}{(c.IsDark ? ";color:#fff" : "")}\""));
        }
        body.Append("</div>")
            .Append(Figure.ColorBar(ColorMap.Diverging, -1, 1, Html.Value(-scale), Html.Value(scale), "0"));
        var id = Figure.NewId("ct");
        return Figure.Fragment(id, "lens-ct", body.ToString(), Css, "", $"LensViz.plain(\"{id}\")");
    }

    public static HtmlContent Render(string[] tokens, torch.Tensor values, string? label = null,
        float? maxAbs = null) =>
        Render(tokens, TensorArrays.ToArray1(values, nameof(values)), label, maxAbs);

    public static HtmlContent RenderFragment(string[] tokens, torch.Tensor values, string? label = null,
        float? maxAbs = null) =>
        RenderFragment(tokens, TensorArrays.ToArray1(values, nameof(values)), label, maxAbs);

    const string Css = """
.lens-ct .lens-ct-tokens{line-height:1.9}
.lens-ct .lens-tok:hover{outline:2px solid #333}
""";
}
