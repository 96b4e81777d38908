using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Lens.Visualization;

/// <summary>
/// A minimal PNG encoder: 8-bit RGB, no interlacing, filter 0 on every row, zlib-compressed with
/// ZLibStream (which writes the zlib header and Adler-32 the format wants). Chunks are
/// length + type + data + CRC-32 of type and data.
/// </summary>
internal static class Png
{
    static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <param name="rgb">width * height * 3 bytes, row by row from the top.</param>
    public static byte[] Encode(int width, int height, byte[] rgb)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentException($"PNG size must be positive, got {width} x {height}.");
        if (rgb.Length != (long)width * height * 3)
            throw new ArgumentException($"expected {width * height * 3} RGB bytes, got {rgb.Length}.");
        var png = new MemoryStream();
        png.Write(Signature);

        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(0), width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), height);
        header[8] = 8;  // bits per channel
        header[9] = 2;  // colour type: RGB
        // compression 0 (deflate), filter method 0, interlace 0 (none): already zero
        WriteChunk(png, "IHDR", header);

        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            var stride = width * 3;
            for (var y = 0; y < height; y++)
            {
                z.WriteByte(0); // filter type 0: the row as is
                z.Write(rgb, y * stride, stride);
            }
        }
        WriteChunk(png, "IDAT", compressed.ToArray());
        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    static void WriteChunk(Stream s, string type, byte[] data)
    {
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(four, data.Length);
        s.Write(four);
        var typeAndData = new byte[4 + data.Length];
        Encoding.ASCII.GetBytes(type, typeAndData);
        data.CopyTo(typeAndData, 4);
        s.Write(typeAndData);
        BinaryPrimitives.WriteUInt32BigEndian(four, Crc32(typeAndData));
        s.Write(four);
    }

    // CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as PNG specifies; table built once.
    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        var c = (uint)n;
        for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        var c = 0xFFFFFFFFu;
        foreach (var b in bytes) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
