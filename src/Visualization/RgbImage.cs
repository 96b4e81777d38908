namespace Lens.Visualization;

/// <summary>An RGB pixel buffer to draw a figure into before encoding it.</summary>
internal sealed class RgbImage(int width, int height)
{
    public int Width { get; } = width;
    public int Height { get; } = height;
    public byte[] Pixels { get; } = Enumerable.Repeat((byte)255, width * height * 3).ToArray(); // white

    public void Set(int x, int y, Rgb c)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height) return;
        var o = (y * Width + x) * 3;
        Pixels[o] = c.R; Pixels[o + 1] = c.G; Pixels[o + 2] = c.B;
    }

    public void Fill(int x, int y, int w, int h, Rgb c)
    {
        for (var j = y; j < y + h; j++)
            for (var i = x; i < x + w; i++) Set(i, j, c);
    }

    public void Frame(int x, int y, int w, int h, Rgb c)
    {
        Fill(x, y, w, 1, c); Fill(x, y + h - 1, w, 1, c);
        Fill(x, y, 1, h, c); Fill(x + w - 1, y, 1, h, c);
    }

    public byte[] ToPng() => Png.Encode(Width, Height, Pixels);
}
