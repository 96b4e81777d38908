namespace Lens;

/// <summary>
/// How
/// <see cref="HookedTransformer.Generate(TorchSharp.torch.Tensor, int, GenerationOptions?, TorchSharp.torch.Tensor?)"/>
/// picks each next token (TransformerLens's generate arguments). Sampling draws from a torch.Generator seeded
/// with <see cref="Seed"/>, so a seeded run is reproducible.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Take the most likely token each step (do_sample = False); the sampling options are then
    /// ignored.</summary>
    public bool Greedy { get; init; }

    /// <summary>Divides the logits before sampling; 0 means greedy, as in TransformerLens.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Whether every step takes the most likely token: <see cref="Greedy"/>, or a temperature of 0.</summary>
    public bool IsGreedy => Greedy || Temperature == 0;

    /// <summary>Sample only among the k most likely tokens.</summary>
    public int? TopK { get; init; }

    /// <summary>Sample only among the most likely tokens whose probabilities sum to at least p (nucleus
    /// sampling).</summary>
    public double? TopP { get; init; }

    /// <summary>Seed of the sampling generator; null draws a fresh seed (not reproducible).</summary>
    public long? Seed { get; init; }

    /// <summary>
    /// Stop a sequence once it produces the end-of-sequence token (later positions are filled with it) and
    /// stop altogether when every sequence has. The token is <see cref="EosTokenId"/>, or the model's
    /// (<see cref="HookedTransformer.EosTokenId"/>: its tokenizer's end-of-sequence id, e.g. GPT-2's 50256,
    /// llama2.c's 2, a Llama tokenizer's &lt;/s&gt;); with neither, generation runs to the end.
    /// </summary>
    public bool StopAtEos { get; init; } = true;

    public long? EosTokenId { get; init; }

    /// <summary>Keep keys and values of earlier positions so each step runs only the new token.</summary>
    public bool UseKvCache { get; init; } = true;

    internal void Validate()
    {
        if (double.IsNaN(Temperature) || Temperature < 0)
            throw new ArgumentException($"temperature must be >= 0 (got {Temperature})");
        if (TopK is int k && k <= 0) throw new ArgumentException($"top_k must be positive (got {k})");
        if (TopP is double p && !(p > 0 && p <= 1)) throw new ArgumentException($"top_p must be in (0, 1] (got {p})");
    }
}
