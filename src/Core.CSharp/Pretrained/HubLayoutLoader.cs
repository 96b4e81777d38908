using Lens.Tokenization;

namespace Lens.Pretrained;

/// <summary>
/// A checkpoint folder in the Hugging Face hub layout (what <c>save_pretrained</c> writes and the hub
/// serves): <c>config.json</c> with <c>architectures</c>/<c>model_type</c>, and <c>model.safetensors</c>
/// or a sharded <c>model.safetensors.index.json</c>. Converted as TransformerLens's
/// get_pretrained_model_config + get_pretrained_state_dict do.
/// </summary>
public static class HubLayoutLoader
{
    /// <summary>
    /// Whether a folder holds a hub-layout checkpoint (a config.json naming an HF architecture, not a
    /// TransformerLens-native one). Its weights are checked when loading, so a folder with only
    /// pickled weights gets an error that says so.
    /// </summary>
    public static bool IsHubLayoutFolder(string dir)
    {
        var cfgPath = Path.Combine(dir, HookedTransformer.ConfigFile);
        if (!File.Exists(cfgPath) || HookedTransformer.IsNativeCheckpoint(dir)) return false;
        try { return HfConfig.Read(cfgPath) is { } hf && (hf.Has("architectures") || hf.Has("model_type")); }
        catch (CheckpointException) { return false; }
    }

    /// <summary>
    /// The TransformerLens config of a hub-layout folder before weight processing. <paramref name="officialName"/>
    /// (a known name or hub id) names the model as TransformerLens does (the part after the last '/').
    /// </summary>
    public static HookedTransformerConfig ReadConfig(string dir, string? officialName = null)
    {
        var (cfg, _) = Convert(dir, officialName);
        return cfg;
    }

    /// <summary>Loads and converts a hub-layout folder, applying the load options (processing, dtype,
    /// device).</summary>
    public static HookedTransformer Load(string dir, LoadOptions? options = null, string? officialName = null)
    {
        options ??= new LoadOptions();
        var (cfg, arch) = Convert(dir, officialName);
        using var ckpt = CheckpointWeights.Open(dir);
        ckpt.BasePrefix = arch.BasePrefix;
        var model = HookedTransformer.FromConverted(cfg, arch.Weights(ckpt, cfg), dir, options);
        try
        {
            if (TokenizerOf(dir) is { } tokenizer)
            {
                model.Tokenizer = tokenizer;
                model.Config.TokenizerPrependsBos ??= tokenizer.PrependsBosByItself;
            }
            return model;
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>
    /// The checkpoint's own tokenizer (tokenizer.json, or vocab.json + merges.txt) with its BOS/EOS/padding
    /// from tokenizer_config.json, special_tokens_map.json or config.json (BOS falling back to EOS, as
    /// TransformerLens does); null when the folder has no tokenizer files.
    /// </summary>
    public static ITokenizer? TokenizerOf(string dir)
    {
        bool present = File.Exists(Path.Combine(dir, "tokenizer.json"))
            || File.Exists(Path.Combine(dir, "vocab.json")) || File.Exists(Path.Combine(dir, "merges.txt"))
            || File.Exists(Path.Combine(dir, "tokenizer.model"));
        return present ? TokenizerLoader.FromFolder(dir) : null;
    }

    static (HookedTransformerConfig, HfArchitecture) Convert(string dir, string? officialName)
    {
        var cfgPath = Path.Combine(dir, HookedTransformer.ConfigFile);
        var hf = HfConfig.Read(cfgPath);
        var name = hf.Architecture
            ?? throw new CheckpointException(
            $"{cfgPath}: no 'architectures' or known 'model_type' to tell which model this is");
        var arch = HfArchitecture.For(name, cfgPath);
        var cfg = arch.Config(hf, name);
        var label = officialName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
        cfg.ModelName = label.Split('/')[^1];
        cfg.TokenizerName = officialName ?? dir;
        try { return (cfg.Complete(), arch); }
        catch (ArgumentException e) { throw new CheckpointException($"{cfgPath}: {e.Message}"); }
    }
}
