using System.IO.Compression;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>A numpy <c>.npz</c> (<c>np.savez</c> / <c>savez_compressed</c>): a zip of <c>NAME.npy</c> arrays, stored or
/// deflated.</summary>
public static class NpzArchive
{
    /// <summary>Every array by name (the entry name without <c>.npy</c>); the caller owns the tensors.</summary>
    public static Dictionary<string, Tensor> LoadAll(string path)
    {
        if (!File.Exists(path)) throw new SaeException($"numpy archive not found: {path}");
        var arrays = new Dictionary<string, Tensor>();
        try
        {
            using var zip = ZipFile.OpenRead(path);
            foreach (var entry in zip.Entries)
            {
                if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) continue;
                var name = entry.FullName[..^".npy".Length];
                using var s = entry.Open();
                arrays[name] = NpyArray.Read(s, $"{path}: {entry.FullName}");
            }
        }
        catch (InvalidDataException e)
        {
            foreach (var t in arrays.Values) t.Dispose();
            throw new SaeException($"{path}: not a readable .npz (zip) archive ({e.Message})");
        }
        catch { foreach (var t in arrays.Values) t.Dispose(); throw; }
        return arrays;
    }
}
