namespace Lens.Sae;

/// <summary>
/// The <c>metadata</c> object of a SAELens 6 <c>cfg.json</c>, in the order a 6.18 training run writes it
/// (sae.py SAEMetadata and from_sae_runner_config, llm_sae_training_runner.py _set_sae_metadata).
/// Informational: SAELens never reads it to encode or decode; <c>hook_name</c> is where the SAE attaches.
/// </summary>
public sealed record SaeMetadata
{
    public const string SaeLensVersion = "6.18.0";
    public required string HookName { get; init; }
    public string? ModelName { get; init; }
    public int? ContextSize { get; init; }
    public bool PrependBos { get; init; } = true;
    public string? DatasetPath { get; init; }
    public string ModelClassName { get; init; } = "HookedTransformer";
    /// <summary>Token ids whose positions were left out of training (SAELens: false, true or a list of ids).</summary>
    public IReadOnlyList<long> ExcludeSpecialTokens { get; init; } = [];
    public string SequenceSeparatorToken { get; init; } = "bos";
    public bool DisableConcatSequences { get; init; }
    /// <summary>Who trained the SAE (an extra key SAELens keeps and ignores).</summary>
    public string? TrainedWith { get; init; }
}
