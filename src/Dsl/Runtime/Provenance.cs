using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;

namespace Lens.Dsl.Runtime;

/// <summary>
/// What a run record says about where it ran, so that a diff of two records can say why they differ: the
/// Lens build (its commit, embedded at build time from git; "unknown" outside a checkout), the TorchSharp
/// and libtorch versions, libtorch's CPU thread count, the CPU model and the OS.
/// </summary>
public static class Provenance
{
    /// <summary>The commit Lens was built from (the part of the informational version after '+'), or
    /// "unknown".</summary>
    public static string LensCommit =>
        RunJson.LensVersion.IndexOf('+') is var plus and >= 0 && plus + 1 < RunJson.LensVersion.Length
            ? RunJson.LensVersion[(plus + 1)..]
            : "unknown";

    public static string TorchSharpVersion =>
        (typeof(TorchSharp.torch)
            .Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
         ?? typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown").Split('+')[0];

    public static string LibTorchVersion => TorchSharp.torch.__version__;

    public static int Threads => TorchSharp.torch.get_num_threads();

    /// <summary>The CPU's model name (/proc/cpuinfo), or the architecture where that cannot be read.</summary>
    public static string Cpu { get; } = ReadCpu();

    public static string Os => RuntimeInformation.OSDescription;

    static string ReadCpu()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal)
                        && line.IndexOf(':') is var colon and > 0)
                        return line[(colon + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    /// <summary>The sha256 of a file's bytes, lower-case hex.</summary>
    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    internal static void Write(Utf8JsonWriter json, ExperimentEnvironment environment)
    {
        json.WriteStartObject("provenance");
        json.WriteString("lens_commit", LensCommit);
        json.WriteString("torchsharp_version", TorchSharpVersion);
        json.WriteString("libtorch_version", LibTorchVersion);
        json.WriteNumber("threads", Threads);
        json.WriteString("cpu", Cpu);
        json.WriteString("os", Os);
        json.WriteStartArray("files");
        foreach (var file in environment.FilesRead)
        {
            json.WriteStartObject();
            json.WriteString("role", file.Role);
            json.WriteString("path", file.Path);
            json.WriteString("sha256", file.Sha256);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}

/// <summary>A file a run read: what it was (model, input, cache), its full path and the sha256 of its bytes when
/// read.</summary>
public sealed record FileRead(string Role, string Path, string Sha256);
