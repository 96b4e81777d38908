namespace Lens.Datasets;

/// <summary>A harvest, merge or dataset read that cannot be done as asked; the message names the input and
/// where.</summary>
public sealed class HarvestException(string message) : Exception(message);
