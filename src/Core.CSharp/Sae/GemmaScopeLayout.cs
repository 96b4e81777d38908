using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// Gemma Scope's native layout (<c>google/gemma-scope-*</c>: <c>layer_N/width_W/average_l0_K/params.npz</c>,
/// no cfg.json), read as SAELens's Gemma-2 loader reads it (loading/pretrained_sae_loaders.py,
/// <c>get_gemma_2_config_from_hf</c>, <c>gemma_2_sae_huggingface_loader</c>): a JumpReLU SAE with
/// apply_b_dec_to_input false; the layer from <c>layer_N</c>; the hook from the repository's kind
/// (<c>res</c> → blocks.N.hook_resid_post, or hook_embed for the embedding SAE; <c>mlp</c> →
/// blocks.N.hook_mlp_out; <c>att</c> → blocks.N.attn.hook_z, flattened over heads); keys <c>w_*</c>
/// renamed <c>W_*</c>; the embedding SAE's W_enc / √d_in and W_dec · √d_in. The repository kind is read
/// from the nearest enclosing folder named like the repository (gemma-scope-…-res, or the hub cache's
/// models--google--gemma-scope-…-res); without one, the hook must be given.
/// </summary>
public static partial class GemmaScopeLayout
{
    public const string ParamsName = "params.npz";

    static readonly Dictionary<string, int> Widths = new()
    {
        ["width_4k"] = 4096, ["width_16k"] = 16384, ["width_32k"] = 32768, ["width_65k"] = 65536,
        ["width_131k"] = 131072, ["width_262k"] = 262144, ["width_524k"] = 524288, ["width_1m"] = 1048576,
    };

    [GeneratedRegex(@"layer_(\d+)")] private static partial Regex LayerFolder();

    /// <summary>The params.npz a path names (the file, or a folder holding it), or null.</summary>
    public static string? ParamsFile(string path) =>
        File.Exists(path) && Path.GetFileName(path) == ParamsName ? path
        : Directory.Exists(path) && File.Exists(Path.Combine(path, ParamsName)) ? Path.Combine(path, ParamsName)
        : null;

    public static SparseAutoencoder Load(string npzPath, string? hook = null)
    {
        var full = Path.GetFullPath(npzPath);
        var folders =
            Path.GetDirectoryName(full)!.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        // SAELens's folder_name is the path inside the repository: layer_N/width_W/average_l0_K (or embedding/...).
        var folderName = string.Join("/", folders.TakeLast(3));
        var repo = folders.SkipLast(3).Reverse().FirstOrDefault(f => f.Contains("gemma-scope"));
        bool embedding = folderName.Contains("embedding");
        var layerMatch = LayerFolder().Match(folderName);
        int? layer = layerMatch.Success
            ? int.Parse(layerMatch.Groups[1].Value, CultureInfo.InvariantCulture)
            : embedding ? 0 : null;

        var state = NpzArchive.LoadAll(full);
        try
        {
            foreach (var key in state.Keys.Where(k => k.StartsWith("w_", StringComparison.Ordinal)).ToList())
            {
                state["W_" + key[2..]] = state[key];
                state.Remove(key);
            }
            foreach (var key in state.Keys.ToList())
                if (state[key].dtype != ScalarType.Float32)
                {
                    var t = state[key];
                    state[key] = t.to(ScalarType.Float32);
                    t.Dispose();
                }
            SaeLoader.DropUnitScalingFactor(state, full);
            if (!state.TryGetValue("W_enc", out var wEnc) || wEnc.dim() != 2)
                throw new SaeException($"{full}: no 2-d array W_enc (or w_enc)");
            int dIn = (int)wEnc.shape[0], dSae = (int)wEnc.shape[1];
            var width = Widths.FirstOrDefault(w => folderName.Contains(w.Key));
            if (width.Key is not null && width.Value != dSae)
                throw new SaeException(
                    $"{full}: the folder says {width.Key} ({width.Value} latents) but W_enc has {dSae}");
            hook ??= HookOf(repo, layer, embedding, full);
            if (embedding)
            {
                var scale = Math.Sqrt(dIn);
                var (e, d) = (state["W_enc"], state["W_dec"]);
                state["W_enc"] = e / scale; state["W_dec"] = d * scale;
                e.Dispose(); d.Dispose();
            }
            var cfg = new SaeConfig
            {
                Architecture = "jumprelu", DIn = dIn, DSae = dSae, Dtype = "float32", ApplyBDecToInput = false,
                NormalizeActivations = "none", ReshapeActivations = hook.Contains("hook_z") ? "hook_z" : "none",
                HookName = hook, PrependBos = true,
            };
            return new SparseAutoencoder(cfg, state, full);
        }
        catch { foreach (var t in state.Values) t.Dispose(); throw; }
    }

    static string HookOf(string? repo, int? layer, bool embedding, string where)
    {
        if (repo is null)
            throw new SaeException($"{where}: a Gemma Scope params.npz outside a folder named like its repository " +
                $"(gemma-scope-…-res/-mlp/-att): give the hook it attaches to (sae load PATH at HOOK)");
        if (layer is null)
            throw new SaeException(
                $"{where}: no layer_N folder and not an embedding SAE: give the hook it attaches to");
        if (repo.Contains("res")) return embedding ? "hook_embed" : $"blocks.{layer}.hook_resid_post";
        if (repo.Contains("mlp")) return $"blocks.{layer}.hook_mlp_out";
        if (repo.Contains("att")) return $"blocks.{layer}.attn.hook_z";
        throw new SaeException($"{where}: repository '{repo}' is none of Gemma Scope's kinds (res, mlp, att): give " +
            $"the hook it attaches to");
    }
}
