namespace Lens.Dsl.Runtime;

/// <summary>The statement whose run the checks estimate takes the most memory, and that estimate (weights and
/// activations, in bytes).</summary>
public sealed record MemoryPeak(double Bytes, Statement Statement);
