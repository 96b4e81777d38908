using System.Buffers.Binary;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Lens.Native;

/// <summary>
/// Makes TorchSharp's native library load on systems whose libstdc++ is older than the one it was
/// built against (Debian 12: see shared/notes/torchsharp-on-debian12.md). TorchSharp 0.107.0's
/// libLibTorchSharp.so asks for GLIBCXX_3.4.32 for one marker symbol that nothing calls; we mark
/// that version requirement weak in a cached copy and load the copy before TorchSharp does, so
/// TorchSharp's own DllImport resolves to it by soname. Does nothing where the library loads as is.
/// </summary>
public static class TorchNative
{
    const string LibName = "libLibTorchSharp.so";
    const string MissingVersion = "GLIBCXX_3.4.32";
    static readonly object Gate = new();
    static bool _done;

    /// <summary>What happened at the last <see cref="EnsureLoaded"/>: "not linux", "loaded as is", "patched copy at
    /// ...".</summary>
    public static string Status { get; private set; } = "not yet";

    /// <summary>
    /// Loads libtorch, patched where it must be. Hosts (the <c>lens</c> tool, the tests, Lens.fsx, Lens.FSharp's
    /// entry points) call it before the first TorchSharp call; it does its work once.
    /// </summary>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_done) return;
            _done = true;
            if (!OperatingSystem.IsLinux()) { Status = "not linux"; return; }
            TorchThreads.PrepareEnvironment(); // before libtorch (and its OpenMP runtime) loads
            var original = FindLibrary();
            if (original is null) { Status = "library not found; TorchSharp will search itself"; return; }
            if (NativeLibrary.TryLoad(original, out _)) { Status = "loaded as is: " + original; return; }

            var dir = Path.GetDirectoryName(original)!;
            foreach (var dep in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" })
            {
                var depPath = FindDependency(dir, dep);
                if (depPath is not null) NativeLibrary.TryLoad(depPath, out _);
            }
            var patched = PatchedCopy(original);
            NativeLibrary.Load(patched);
            Status = "patched copy at " + patched;
        }
    }

    static string? FindLibrary()
    {
        var asmDir = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location);
        if (string.IsNullOrEmpty(asmDir)) asmDir = AppContext.BaseDirectory;
        var candidates = new[]
        {
            Path.Combine(asmDir, "runtimes", "linux-x64", "native", LibName),
            Path.Combine(asmDir, LibName),
            Path.Combine(asmDir, "..", "..", "runtimes", "linux-x64", "native", LibName),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", LibName),
        };
        return candidates.Select(Path.GetFullPath).FirstOrDefault(File.Exists);
    }

    static string? FindDependency(string dir, string name)
    {
        var here = Path.Combine(dir, name);
        if (File.Exists(here)) return here;
        // NuGet layout: libtorch lives in its own package next to torchsharp's.
        var packages = Path.GetFullPath(Path.Combine(dir, "..", "..", "..", "..", ".."));
        if (!Directory.Exists(packages)) return null;
        foreach (var pkg in Directory.EnumerateDirectories(packages, "libtorch-*-linux-x64"))
            foreach (var ver in Directory.EnumerateDirectories(pkg))
            {
                var p = Path.Combine(ver, "runtimes", "linux-x64", "native", name);
                if (File.Exists(p)) return p;
            }
        return null;
    }

    static string PatchedCopy(string original)
    {
        var bytes = File.ReadAllBytes(original);
        var hash = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        var root = Environment.GetEnvironmentVariable("LENS_CACHE")
                   ?? Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME")
                                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile),
                                   ".cache"), "lens");
        var dir = Path.Combine(root, "native", hash);
        var target = Path.Combine(dir, LibName);
        if (File.Exists(target)) return target;
        if (!MarkVersionWeak(bytes, MissingVersion))
            throw new InvalidOperationException($"{original} does not load and has no {MissingVersion} requirement " +
                $"to relax; see the loader's error above.");
        Directory.CreateDirectory(dir);
        var tmp = target + "." + Environment.ProcessId + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, target, overwrite: true);
        return target;
    }

    /// <summary>Sets VER_FLG_WEAK on the Elf64_Vernaux entry named <paramref name="version"/>.</summary>
    internal static bool MarkVersionWeak(byte[] elf, string version)
    {
        var s = elf.AsSpan();
        if (s.Length < 64 || s[0] != 0x7f || s[1] != (byte)'E' || s[2] != (byte)'L' || s[3] != (byte)'F' || s[4] != 2
            || s[5] != 1)
            return false; // not a little-endian ELF64
        long shoff = BinaryPrimitives.ReadInt64LittleEndian(s[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(s[0x3C..]);
        long Section(int i, int field) => field switch
        {
            0 => BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan((int)(shoff + i * shentsize + 4))),  // sh_type
            1 => BinaryPrimitives.ReadInt64LittleEndian(elf.AsSpan((int)(shoff + i * shentsize + 0x18))), // sh_offset
            _ => BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan((int)(shoff + i * shentsize + 0x28))), // sh_link
        };
        bool changed = false;
        for (int i = 0; i < shnum; i++)
        {
            if (Section(i, 0) != 0x6ffffffe) continue; // SHT_GNU_verneed
            long off = Section(i, 1);
            long strtab = Section((int)Section(i, 2), 1);
            while (true)
            {
                int cnt = BinaryPrimitives.ReadUInt16LittleEndian(s[(int)(off + 2)..]);
                long aux = off + BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(off + 8)..]);
                for (int a = 0; a < cnt; a++)
                {
                    long nameOff = strtab + BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(aux + 8)..]);
                    int end = s[(int)nameOff..].IndexOf((byte)0);
                    if (System.Text.Encoding.ASCII.GetString(s.Slice((int)nameOff, end)) == version)
                    {
                        var flags = BinaryPrimitives.ReadUInt16LittleEndian(s[(int)(aux + 4)..]);
                        BinaryPrimitives.WriteUInt16LittleEndian(s[(int)(aux + 4)..], (ushort)(flags | 0x2));
                        changed = true;
                    }
                    aux += BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(aux + 12)..]);
                }
                uint next = BinaryPrimitives.ReadUInt32LittleEndian(s[(int)(off + 12)..]);
                if (next == 0) break;
                off += next;
            }
        }
        return changed;
    }
}
