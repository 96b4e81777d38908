namespace Lens.Analysis;

/// <summary>
/// How a patching sweep runs. By default its cells are rows of batched forwards (<see cref="BatchedPatching"/>),
/// chunked to <see cref="MemoryBudgetBytes"/>; <see cref="OneCellPerForward"/> runs TransformerLens's way, one
/// forward per cell, the reference the batched sweep is tested against. <see cref="MetricReads"/> declares which
/// logits the metric reads, so that only those are computed (the metric then sees NaN elsewhere, and a NaN
/// metric is refused); null computes every logit.
/// </summary>
public sealed record PatchingOptions
{
    public static PatchingOptions Default { get; } = new();

    /// <summary>The reference: one forward of the whole model per cell.</summary>
    public static PatchingOptions Reference { get; } = new() { OneCellPerForward = true };

    public bool OneCellPerForward { get; init; }

    public LogitsRead? MetricReads { get; init; }

    /// <summary>The estimated activation memory of one batched forward (default 256 MiB; at least one cell runs per
    /// forward).</summary>
    public double MemoryBudgetBytes { get; init; } = 256.0 * (1 << 20);
}
