using System.Security.Cryptography;

namespace Lens.Demo;

/// <summary>
/// Models shipped inside Lens.Demo (models/NAME/config.json and model.safetensors as embedded
/// resources), loadable by name from anywhere: the first load extracts them once, atomically, into
/// the Lens cache (LENS_CACHE, else $XDG_CACHE_HOME/lens, else ~/.cache/lens) under
/// models/NAME/CONTENT-HASH, and later loads read that folder.
/// </summary>
public static class EmbeddedModels
{
    public const string DemoName = "demo-attn-only-2l";

    public static IReadOnlyList<string> Names { get; } = [DemoName];

    const string ResourcePrefix = "Lens.Models.";
    static readonly object Gate = new();

    /// <summary>The model source of the embedded models: their names load from <see cref="Folder"/>.</summary>
    public static ModelSource Source { get; } = new($"embedded model ({string.Join(", ", Names)})",
        (name, o) => Names.Contains(name) ? HookedTransformer.Load(Folder(name), o.Device, o.Dtype) : null);

    /// <summary>The extracted checkpoint folder of an embedded model (extracting it on first use).</summary>
    public static string Folder(string name)
    {
        if (!Names.Contains(name))
            throw new ArgumentException($"'{name}' is not an embedded model (embedded: {string.Join(", ", Names)})");
        var files = new[] { HookedTransformer.ConfigFile, HookedTransformer.WeightsFile };
        var asm = typeof(EmbeddedModels).Assembly;
        var contents = files.Select(f => asm.GetManifestResourceStream($"{ResourcePrefix}{name}.{f}")
            ?? throw new CheckpointException($"this build of Lens.Demo does not embed '{name}' (models/{name}/{f} " +
            $"was missing when it was built; run './lens train-demo --out models/{name}' and rebuild)")).ToArray();
        try
        {
            var hash = ContentHash(contents);
            var parent = Path.Combine(CacheRoot(), "models", name);
            var folder = Path.Combine(parent, hash);
            lock (Gate)
            {
                if (files.All(f => File.Exists(Path.Combine(folder, f)))) return folder;
                Directory.CreateDirectory(parent);
                var staging = Path.Combine(parent, $".extract-{Environment.ProcessId}-{Guid.NewGuid():N}");
                Directory.CreateDirectory(staging);
                try
                {
                    for (int i = 0; i < files.Length; i++)
                    {
                        contents[i].Position = 0;
                        using var target = File.Create(Path.Combine(staging, files[i]));
                        contents[i].CopyTo(target);
                    }
                    try { Directory.Move(staging, folder); }
                    catch (IOException) when (files.All(f => File.Exists(Path.Combine(folder, f))))
                    {
                        /* another process extracted it first */
                    }
                }
                finally { if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true); }
                return folder;
            }
        }
        finally { foreach (var c in contents) c.Dispose(); }
    }

    static string ContentHash(Stream[] contents)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var c in contents)
        {
            int read;
            while ((read = c.Read(buffer, 0, buffer.Length)) > 0) sha.AppendData(buffer, 0, read);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    static string CacheRoot() =>
        Environment.GetEnvironmentVariable("LENS_CACHE")
        ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME")
                        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"),
                        "lens");
}
