using System.Text;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// Reads one numpy <c>.npy</c> array (format versions 1-3): the magic <c>\x93NUMPY</c>, a header
/// dictionary with <c>descr</c>, <c>fortran_order</c> and <c>shape</c>, then the raw data. Little-endian
/// float32/float64/float16 and int32/int64 in C order; anything else is refused naming the array.
/// </summary>
public static partial class NpyArray
{
    static readonly Dictionary<string, (ScalarType Type, int Size)> Descrs = new()
    {
        ["<f4"] = (ScalarType.Float32, 4), ["<f8"] = (ScalarType.Float64, 8), ["<f2"] = (ScalarType.Float16, 2),
        ["<i4"] = (ScalarType.Int32, 4), ["<i8"] = (ScalarType.Int64, 8),
    };

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")] private static partial Regex DescrField();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")] private static partial Regex FortranField();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")] private static partial Regex ShapeField();

    public static Tensor Read(Stream stream, string where)
    {
        var magic = ReadExactly(stream, 8, where);
        if (magic[0] != 0x93 || Encoding.ASCII.GetString(magic, 1, 5) != "NUMPY")
            throw new SaeException($"{where}: not a .npy array (bad magic)");
        int major = magic[6];
        int headerLength = major switch
        {
            1 => BitConverter.ToUInt16(ReadExactly(stream, 2, where)),
            2 or 3 => checked((int)BitConverter.ToUInt32(ReadExactly(stream, 4, where))),
            _ => throw new SaeException($"{where}: .npy format version {major} is not supported (1-3)"),
        };
        var header = Encoding.Latin1.GetString(ReadExactly(stream, headerLength, where));
        var descr = DescrField().Match(header);
        var fortran = FortranField().Match(header);
        var shapeText = ShapeField().Match(header);
        if (!descr.Success || !fortran.Success || !shapeText.Success)
            throw new SaeException($"{where}: .npy header '{header.Trim()}' lacks descr, fortran_order or shape");
        if (!Descrs.TryGetValue(descr.Groups[1].Value, out var kind))
            throw new SaeException(
                $"{where}: .npy dtype '{descr.Groups[1].Value}' is not supported ({string.Join(", ", Descrs.Keys)})");
        if (fortran.Groups[1].Value == "True")
            throw new SaeException($"{where}: .npy array is in Fortran order (only C order is supported)");
        var shape =
            shapeText.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.TryParse(s, out var d) && d >= 0
                ? d
                : throw new SaeException($"{where}: .npy shape ({shapeText.Groups[1].Value}) is malformed")).ToArray();
        long count = shape.Aggregate(1L, (a, d) => a * d);
        if (count * kind.Size > int.MaxValue)
            throw new SaeException(
                $"{where}: .npy array of {count * kind.Size} bytes is larger than Lens reads (2 GiB)");
        var t = empty(shape, dtype: kind.Type);
        try
        {
            var bytes = t.bytes;
            int filled = 0;
            while (filled < bytes.Length)
            {
                int n = stream.Read(bytes[filled..]);
                if (n == 0)
                    throw new SaeException(
                        $"{where}: .npy data ends after {filled} of {bytes.Length} bytes (truncated?)");
                filled += n;
            }
            return t;
        }
        catch { t.Dispose(); throw; }
    }

    static byte[] ReadExactly(Stream s, int n, string where)
    {
        var b = new byte[n];
        try { s.ReadExactly(b); }
        catch (EndOfStreamException)
        {
            throw new SaeException($"{where}: .npy file ends inside its header (truncated?)");
        }
        return b;
    }
}
