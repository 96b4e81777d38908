namespace Lens.Sae;

/// <summary>
/// An SAE's configuration as SAELens 6 holds it after loading (<c>SAEConfig</c> and its architecture
/// subclasses, sae.py 150-162, topk_sae.py 149-150), with the metadata Lens uses: where the SAE attaches.
/// </summary>
public sealed record SaeConfig
{
    /// <summary><c>standard</c> (ReLU), <c>topk</c>, <c>jumprelu</c> or <c>gated</c>.</summary>
    public required string Architecture { get; init; }
    public required int DIn { get; init; }
    public required int DSae { get; init; }
    /// <summary>SAELens's dtype name (float32, float64, float16, bfloat16); weights and inputs are cast to
    /// it.</summary>
    public string Dtype { get; init; } = "float32";
    public bool ApplyBDecToInput { get; init; } = true;
    /// <summary><c>none</c>, <c>constant_norm_rescale</c>, <c>layer_norm</c> or <c>expected_average_only_in</c> (the
    /// identity at inference).</summary>
    public string NormalizeActivations { get; init; } = "none";
    /// <summary><c>none</c>, or <c>hook_z</c>: [..., n_heads, d_head] is flattened head-major before encoding and
    /// reshaped back after decoding.</summary>
    public string ReshapeActivations { get; init; } = "none";
    /// <summary>TopK only: latents kept per token.</summary>
    public int K { get; init; } = 100;
    /// <summary>TopK only: rank pre-activations scaled by the decoder rows' norms (and divide them out before
    /// decoding).</summary>
    public bool RescaleActsByDecoderNorm { get; init; }
    /// <summary>The hook point the SAE reads and replaces (metadata.hook_name).</summary>
    public required string HookName { get; init; }
    /// <summary>metadata.model_name, informational.</summary>
    public string? ModelName { get; init; }
    /// <summary>metadata.prepend_bos, informational (how the SAE's training inputs were tokenized).</summary>
    public bool? PrependBos { get; init; }

    public bool HookZ => ReshapeActivations == "hook_z";

    public static readonly IReadOnlyList<string> Architectures = ["standard", "topk", "jumprelu", "gated"];
    public static readonly IReadOnlyList<string> Normalizations =
        ["none", "constant_norm_rescale", "layer_norm", "expected_average_only_in"];
}
