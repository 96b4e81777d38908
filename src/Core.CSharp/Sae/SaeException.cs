namespace Lens.Sae;

/// <summary>An SAE that cannot be loaded or used as asked: the message names the file, field or input and what is
/// wrong.</summary>
public sealed class SaeException(string message) : Exception(message);
