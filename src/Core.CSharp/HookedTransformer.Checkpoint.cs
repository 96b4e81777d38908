using Lens.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens;

/// <summary>A checkpoint that cannot be loaded: the message names the file and what is wrong.</summary>
public sealed class CheckpointException(string message) : Exception(message);

/// <summary>
/// The TransformerLens-native checkpoint folder: <c>config.json</c> (the config's fields, as Python's
/// <c>model.cfg.to_dict()</c> gives them) and <c>model.safetensors</c> (the state dict under
/// TransformerLens's parameter names and shapes).
/// </summary>
public sealed partial class HookedTransformer
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";

    /// <summary>Whether a folder is a TransformerLens-native checkpoint (config.json with n_layers and d_model,
    /// model.safetensors).</summary>
    public static bool IsNativeCheckpoint(string dir)
    {
        var cfg = Path.Combine(dir, ConfigFile);
        if (!File.Exists(cfg) || !File.Exists(Path.Combine(dir, WeightsFile))) return false;
        var text = File.ReadAllText(cfg);
        return text.Contains("\"n_layers\"") && text.Contains("\"d_model\"");
    }

    /// <summary>Loads a TransformerLens-native checkpoint folder.</summary>
    public static HookedTransformer Load(string dir, Device? device = null, ScalarType? dtype = null)
    {
        var cfgPath = Path.Combine(dir, ConfigFile);
        if (!Directory.Exists(dir)) throw new CheckpointException($"checkpoint folder not found: {dir}");
        if (!File.Exists(cfgPath))
            throw new CheckpointException(
                $"{dir}: no {ConfigFile} (a TransformerLens-native checkpoint has {ConfigFile} and {WeightsFile})");
        HookedTransformerConfig cfg;
        try { cfg = HookedTransformerConfig.FromJson(File.ReadAllText(cfgPath), cfgPath); }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new CheckpointException(e.Message.StartsWith(cfgPath, StringComparison.Ordinal)
                ? e.Message
                : $"{cfgPath}: {e.Message}");
        }
        if (dtype is ScalarType dt) cfg.Dtype = NameOf(dt);
        cfg.InitWeights = false;
        var model = new HookedTransformer(cfg);
        try
        {
            using var file = SafetensorsFile.Open(Path.Combine(dir, WeightsFile));
            // Each tensor is read straight into its parameter's memory: no second copy of the weights at any time.
            model.LoadStateDict(file.Entries.Values.Select(
                e => new TensorSource(e.Name, e.Shape, p => file.ReadInto(e.Name, p))), file.Path);
        }
        catch (SafetensorsException e) { model.Dispose(); throw new CheckpointException(e.Message); }
        catch (FileNotFoundException e) { model.Dispose(); throw new CheckpointException(e.Message); }
        catch { model.Dispose(); throw; }
        if (device is not null) model.To(device);
        return model;
    }

    /// <summary>Writes config.json and model.safetensors into a folder (created if needed).</summary>
    public void Save(string dir)
    {
        if (OutputPaths.FolderProblem(dir) is string problem)
            throw new OutputPathException($"cannot save the model: {problem}");
        Directory.CreateDirectory(dir);
        SafetensorsFile.Save(Path.Combine(dir, WeightsFile), StateDict(),
            new Dictionary<string, string> { ["format"] = "pt", ["producer"] = "Lens" });
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), Config.ToJson());
    }

    /// <summary>The parameters under their TransformerLens names (the model's own tensors, not copies).</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateDict() =>
        named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter));

    /// <summary>Copies tensors into the parameters by name, checking that names and shapes match exactly.</summary>
    public void LoadStateDict(IEnumerable<KeyValuePair<string, Tensor>> tensors, string source = "state dict") =>
        LoadStateDict(tensors.Select(kv => new TensorSource(kv.Key, kv.Value.shape, p => p.copy_(kv.Value))), source);

    /// <summary>Tensors produced on demand in the parameter's dtype (converted checkpoints), each freed after its
    /// copy.</summary>
    void LoadStateDict(IEnumerable<KeyValuePair<string, Func<ScalarType, Tensor>>> tensors, string source) =>
        LoadStateDict(tensors.Select(kv => new TensorSource(kv.Key, null, p =>
        {
            using var t = kv.Value(p.dtype);
            if (!t.shape.SequenceEqual(p.shape)) throw ShapeMismatch(source, kv.Key, t.shape, p.shape);
            p.copy_(t);
        })), source);

    /// <summary>A named tensor (of a shape known up front, or checked once produced) that can copy itself into a
    /// parameter.</summary>
    sealed record TensorSource(string Name, long[]? Shape, Action<Tensor> CopyInto);

    static CheckpointException ShapeMismatch(string source, string name, long[] shape, long[] expected) =>
        new($"{source}: '{name}' has shape [{string.Join(", ", shape)}] but this config needs " +
            $"[{string.Join(", ", expected)}]");

    void LoadStateDict(IEnumerable<TensorSource> tensors, string source)
    {
        var parameters = named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var seen = new HashSet<string>();
        var unexpected = new List<string>();
        using var _ = no_grad();
        foreach (var (name, shape, copyInto) in tensors)
        {
            if (!parameters.TryGetValue(name, out var p)) { unexpected.Add(name); continue; }
            if (shape is not null && !shape.SequenceEqual(p.shape)) throw ShapeMismatch(source, name, shape, p.shape);
            copyInto(p);
            seen.Add(name);
        }
        if (unexpected.Count > 0)
            throw new CheckpointException($"{source}: unexpected tensors for this " +
                $"config: {string.Join(", ", unexpected.Take(8))}{(unexpected.Count > 8 ? ", ..." : "")}");
        // Missing biases are zeros, as TransformerLens's fill_missing_keys leaves them; missing weights are an error.
        var missing = parameters.Keys.Where(k => !seen.Contains(k)).ToList();
        var missingWeights = missing.Where(k => !IsBias(k)).ToList();
        if (missingWeights.Count > 0)
            throw new CheckpointException($"{source}: missing " +
                $"tensors: {string.Join(", ", missingWeights.Take(8))}{(missingWeights.Count > 8 ? ", ..." : "")}");
        foreach (var k in missing) parameters[k].zero_();
    }

    static bool IsBias(string name)
    {
        var leaf = name[(name.LastIndexOf('.') + 1)..];
        return leaf.StartsWith("b_", StringComparison.Ordinal) || leaf.StartsWith("_b_", StringComparison.Ordinal)
            || leaf == "b";
    }
}
