using System.Security.Cryptography;
using System.Text;
using static TorchSharp.torch;

namespace Lens;

/// <summary>
/// The sha256 of a state dict: for each tensor in order, its name, dtype and shape as one UTF-8 line
/// ("embed.W_E float32 [50257, 32]\n"), then its bytes (contiguous, on the CPU, native little-endian).
/// Two state dicts agree on it exactly when they hold the same tensors under the same names. The run record
/// (`weights_sha256`), `lens train-demo` and the demo SAE's test use it.
/// </summary>
public static class StateDictChecksum
{
    public static string Sha256(IEnumerable<KeyValuePair<string, Tensor>> stateDict)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, tensor) in stateDict)
        {
            using var scope = NewDisposeScope();
            var cpu = tensor.detach().cpu().contiguous();
            var dtype = cpu.dtype.ToString().ToLowerInvariant();
            hash.AppendData(Encoding.UTF8.GetBytes($"{name} {dtype} [{string.Join(", ", cpu.shape)}]\n"));
            if (cpu.numel() > 0) hash.AppendData(cpu.bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
