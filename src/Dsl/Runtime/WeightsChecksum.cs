using System.Security.Cryptography;
using System.Text;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// The sha256 of a model's state dict: for each parameter in state-dict order, its name, dtype and
/// shape as one UTF-8 line ("embed.W_E float32 [50257, 32]\n"), then its bytes (contiguous, on the CPU,
/// native little-endian). Two runs agree on it exactly when they used the same weights.
/// </summary>
public static class WeightsChecksum
{
    public static string Sha256(HookedTransformer model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, tensor) in model.StateDict())
        {
            using var scope = NewDisposeScope();
            var cpu = tensor.detach().cpu().contiguous();
            hash.AppendData(Encoding.UTF8.GetBytes(
                $"{name} {cpu.dtype.ToString().ToLowerInvariant()} [{string.Join(", ", cpu.shape)}]\n"));
            if (cpu.numel() > 0) hash.AppendData(cpu.bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
