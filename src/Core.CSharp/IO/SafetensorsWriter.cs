using static TorchSharp.torch;

namespace Lens.IO;

/// <summary>
/// Writes a safetensors file piece by piece into a seekable stream: the header first (the layout knows every
/// offset), then each tensor's rows (slices along its first dimension) in order, a few at a time, each piece at its
/// offset. So activations computed in chunks of rows go to the file as each chunk is done, and the file is byte for
/// byte the one written from whole tensors. <see cref="Finish"/> refuses a file with any tensor's rows missing.
/// </summary>
public sealed class SafetensorsWriter
{
    readonly Stream _stream;
    readonly SafetensorsLayout _layout;
    readonly Dictionary<string, long> _written = [];

    public SafetensorsWriter(Stream stream, SafetensorsLayout layout)
    {
        if (!stream.CanSeek)
            throw new ArgumentException("a safetensors file is written piece by piece and needs a stream that can seek",
                nameof(stream));
        (_stream, _layout) = (stream, layout);
        _stream.Position = 0;
        _stream.Write(layout.Header);
        foreach (var e in layout.Entries) _written[e.Name] = 0;
    }

    /// <summary>
    /// Writes the next rows of tensor <paramref name="name"/>, after those written so far: a tensor of the entry's
    /// dtype and of its shape but for the first dimension (a tensor without dimensions is written whole).
    /// </summary>
    public void Append(string name, Tensor rows)
    {
        if (!_layout.Named.TryGetValue(name, out var e))
            throw new SafetensorsException($"cannot write tensor '{name}': the file's header has no such tensor");
        if (!SafetensorsFile.DtypeNames.TryGetValue(rows.dtype, out var dtype) || dtype != e.Dtype)
            throw new SafetensorsException(
                $"cannot write rows of dtype {rows.dtype} into tensor '{name}' of dtype {e.Dtype}");
        var shape = rows.shape;
        bool fits = e.Shape.Length == 0
            ? shape.Length == 0
            : shape.Length == e.Shape.Length && shape.AsSpan(1).SequenceEqual(e.Shape.AsSpan(1));
        if (!fits)
            throw new SafetensorsException($"cannot write rows of shape [{string.Join(", ", shape)}] into tensor " +
                $"'{name}' of shape [{string.Join(", ", e.Shape)}]");
        long bytes = rows.numel() * rows.ElementSize, done = _written[name];
        if (done + bytes > e.ByteLength)
            throw new SafetensorsException($"cannot write {shape[0]} more rows into tensor '{name}' of shape " +
                $"[{string.Join(", ", e.Shape)}]: it has no room left for them");
        if (bytes > 0)
        {
            using var c = rows.detach().cpu().contiguous();
            _stream.Position = _layout.DataStart + e.Begin + done;
            _stream.Write(c.bytes);
        }
        _written[name] = done + bytes;
    }

    /// <summary>Checks that every tensor got all its rows (the data then covers the whole file).</summary>
    public void Finish()
    {
        foreach (var e in _layout.Entries)
            if (_written[e.Name] != e.ByteLength)
                throw new SafetensorsException($"tensor '{e.Name}' of shape [{string.Join(", ", e.Shape)}] " +
                    $"got {_written[e.Name]} of its {e.ByteLength} bytes: the file would be incomplete");
        _stream.Position = _layout.Length;
    }
}
