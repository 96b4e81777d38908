using System.Text;
using System.Text.Json;
using Lens.IO;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// Writes an SAE in SAELens 6's on-disk layout, as <c>SAE.save_model</c> / <c>save_inference_model</c>
/// (sae.py 514-531, 1011-1027) and the runner's <c>save_final_sae</c> do: <c>cfg.json</c> (the 6.x keys in
/// dataclass order, then <c>architecture</c>), <c>sae_weights.safetensors</c> (the state dict, float32, no
/// metadata) and optionally <c>sparsity.safetensors</c> (<c>sparsity</c>: log10 of each latent's firing
/// frequency + 1e-10). Each file is written to a temporary file and renamed (<see cref="AtomicFile"/>).
/// SAELens's <c>SAE.load_from_disk</c> and Lens's <see cref="SaeLoader"/> read the folder back.
/// </summary>
public static class SaeCheckpoint
{
    public const string SparsityFile = "sparsity.safetensors";

    public static void Save(SparseAutoencoder sae, string dir, SaeMetadata metadata, Tensor? logFeatureSparsity = null)
    {
        if (OutputPaths.FolderProblem(dir) is string problem)
            throw new SaeException($"cannot write the SAE to '{dir}': {problem}");
        if (sae.Config.NormalizeActivations != "none" || sae.Config.HookZ || sae.Config.Architecture == "gated")
            throw new SaeException($"{sae.Source}: Lens writes standard, topk and jumprelu SAEs without " +
                $"normalisation or hook_z reshaping (this one: {sae.Config.Architecture}, " +
                $"normalize_activations {sae.Config.NormalizeActivations}, " +
                $"reshape_activations {sae.Config.ReshapeActivations})");
        if (metadata.HookName != sae.HookName)
            throw new SaeException(
                $"the metadata's hook_name '{metadata.HookName}' is not the SAE's hook '{sae.HookName}'");
        Directory.CreateDirectory(dir);
        using (var scope = NewDisposeScope())
        {
            var tensors = sae.StateDict()
                .Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().to(ScalarType.Float32).cpu()))
                .ToList();
            SafetensorsFile.Save(Path.Combine(dir, SaeLoader.WeightsFile), tensors);
            if (logFeatureSparsity is not null)
                SafetensorsFile.Save(Path.Combine(dir, SparsityFile),
                    [new("sparsity", logFeatureSparsity.detach().to(ScalarType.Float32).cpu())]);
        }
        AtomicFile.WriteAllText(Path.Combine(dir, SaeLoader.ConfigFile), ConfigJson(sae.Config, metadata));
    }

    /// <summary>The cfg.json text: SAEConfig's fields in order, the metadata, k and rescale_acts_by_decoder_norm for
    /// topk, then architecture.</summary>
    public static string ConfigJson(SaeConfig cfg, SaeMetadata m)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteNumber("d_in", cfg.DIn);
            w.WriteNumber("d_sae", cfg.DSae);
            w.WriteString("dtype", cfg.Dtype);
            w.WriteString("device", "cpu");
            w.WriteBoolean("apply_b_dec_to_input", cfg.ApplyBDecToInput);
            w.WriteString("normalize_activations", cfg.NormalizeActivations);
            w.WriteString("reshape_activations", cfg.ReshapeActivations);
            w.WriteStartObject("metadata");
            w.WriteString("sae_lens_version", SaeMetadata.SaeLensVersion);
            w.WriteString("sae_lens_training_version", SaeMetadata.SaeLensVersion);
            WriteStringOrNull(w, "model_name", m.ModelName);
            w.WriteString("hook_name", m.HookName);
            w.WriteNull("hook_head_index");
            if (m.ContextSize is int c) w.WriteNumber("context_size", c); else w.WriteNull("context_size");
            w.WriteBoolean("prepend_bos", m.PrependBos);
            w.WriteStartArray("seqpos_slice"); w.WriteNullValue(); w.WriteEndArray();
            w.WriteStartObject("model_from_pretrained_kwargs"); w.WriteEndObject();
            WriteStringOrNull(w, "dataset_path", m.DatasetPath);
            w.WriteString("model_class_name", m.ModelClassName);
            if (m.ExcludeSpecialTokens.Count == 0) w.WriteBoolean("exclude_special_tokens", false);
            else
            {
                w.WriteStartArray("exclude_special_tokens");
                foreach (var t in m.ExcludeSpecialTokens) w.WriteNumberValue(t);
                w.WriteEndArray();
            }
            w.WriteString("sequence_separator_token", m.SequenceSeparatorToken);
            w.WriteBoolean("disable_concat_sequences", m.DisableConcatSequences);
            if (m.TrainedWith is not null) w.WriteString("trained_with", m.TrainedWith);
            w.WriteEndObject();
            if (cfg.Architecture == "topk")
            {
                w.WriteNumber("k", cfg.K);
                w.WriteBoolean("rescale_acts_by_decoder_norm", cfg.RescaleActsByDecoderNorm);
            }
            w.WriteString("architecture", cfg.Architecture);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name); else w.WriteString(name, value);
    }
}
