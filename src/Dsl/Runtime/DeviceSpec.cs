using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>Where the model runs: `cpu`, `cuda` or `cuda:N`.</summary>
public sealed record DeviceSpec(DeviceKind Kind, int? Index = null)
{
    public static readonly DeviceSpec Cpu = new(DeviceKind.Cpu);

    public static DeviceSpec Of(DeviceStatement statement) => new(statement.Device, statement.Index);

    /// <summary>`cpu`, `cuda`, `cuda:1`; anything else is a usage mistake (ArgumentException).</summary>
    public static DeviceSpec Parse(string text)
    {
        var script = Parser.Parse("device " + text, "--device");
        return script.Statements is [DeviceStatement d]
            ? Of(d)
            : throw new ArgumentException($"'{text}' is not a device (cpu, cuda or cuda:N)");
    }

    /// <summary>Whether this machine can run on the device; the reason when not.</summary>
    public string? Unavailable()
    {
        if (Kind == DeviceKind.Cpu) return null;
        if (!cuda.is_available())
            return $"device {this} is not available: this Lens build or machine has no CUDA (use cpu)";
        if (Index is int i && i >= cuda.device_count())
            return $"device {this} is not available: the machine has {cuda.device_count()} CUDA device(s)";
        return null;
    }

    public Device ToTorch() => Kind == DeviceKind.Cpu ? CPU : new Device(DeviceType.CUDA, Index ?? 0);

    public override string ToString() => Kind == DeviceKind.Cpu ? "cpu" : Index is int i ? $"cuda:{i}" : "cuda";
}
