using Lens.IO;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// Finds and loads an SAE: a SAELens folder (<c>cfg.json</c> + <c>sae_weights.safetensors</c>, read as
/// SAELens's <c>sae_lens_disk_loader</c> and <c>read_sae_components_from_disk</c> do), or Gemma Scope's
/// native layout (a folder holding <c>params.npz</c>, or the file itself; <see cref="GemmaScopeLayout"/>),
/// on this machine; an SAE named by a hub repository id (<c>owner/repo[/folder]</c>) loads through Lens.Hub's
/// <c>SaeHubSource.Load</c>, which downloads it and then calls this loader.
/// </summary>
public static class SaeLoader
{
    public const string ConfigFile = "cfg.json";
    public const string WeightsFile = "sae_weights.safetensors";

    /// <param name="path">the SAE's folder, or a Gemma Scope params.npz</param>
    /// <param name="hook">attach at this hook point instead of the config's hook_name</param>
    public static SparseAutoencoder Load(string path, string? hook = null, Device? device = null)
    {
        SparseAutoencoder sae;
        if (Directory.Exists(path) && File.Exists(Path.Combine(path, ConfigFile))) sae = LoadSaeLens(path, hook);
        else if (GemmaScopeLayout.ParamsFile(path) is string npz) sae = GemmaScopeLayout.Load(npz, hook);
        else if (Directory.Exists(path))
            throw new SaeException($"'{path}' is not an SAE folder: expected {ConfigFile} with {WeightsFile} " +
                $"(SAELens) or params.npz (Gemma Scope)");
        else if (!Path.IsPathRooted(path) && path.Contains('/'))
            throw new SaeException($"SAE not found: {path} (no such local folder or file; an SAE named by hub id " +
                $"owner/repo[/folder] loads through Lens.Hub's SaeHubSource.Load)");
        else throw new SaeException($"SAE not found: {path}");
        if (device is not null) sae.To(device);
        return sae;
    }

    static SparseAutoencoder LoadSaeLens(string dir, string? hook)
    {
        var cfgPath = Path.Combine(dir, ConfigFile);
        var cfg = SaeConfigJson.Read(cfgPath, hook);
        var weightsPath = Path.Combine(dir, WeightsFile);
        if (!File.Exists(weightsPath)) throw new SaeException($"{dir}: no {WeightsFile} beside {ConfigFile}");
        var state = new Dictionary<string, Tensor>();
        try
        {
            using (var file = SafetensorsFile.Open(weightsPath))
                foreach (var name in file.Names) state[name] = file.Load(name);
            DropUnitScalingFactor(state, weightsPath);
            return new SparseAutoencoder(cfg, state, dir);
        }
        catch (SafetensorsException e)
        {
            foreach (var t in state.Values) t.Dispose();
            throw new SaeException(e.Message);
        }
        catch { foreach (var t in state.Values) t.Dispose(); throw; }
    }

    /// <summary>
    /// pretrained_sae_loaders.py 349-368: a legacy <c>scaling_factor</c> of all ones is dropped. Any other
    /// becomes <c>finetuning_scaling_factor</c>, which no SAELens 6 SAE class accepts (its strict
    /// load_state_dict fails), so Lens refuses it too.
    /// </summary>
    internal static void DropUnitScalingFactor(Dictionary<string, Tensor> state, string where)
    {
        if (!state.TryGetValue("scaling_factor", out var s)) return;
        using var ones = ones_like(s);
        if (!s.allclose(ones, rtol: 1e-5, atol: 1e-8))
            throw new SaeException($"{where}: tensor 'scaling_factor' is not all ones (a finetuning scaling factor, " +
                $"which SAELens 6 cannot load either)");
        state.Remove("scaling_factor");
        s.Dispose();
    }
}
