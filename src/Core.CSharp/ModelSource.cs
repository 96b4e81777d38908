namespace Lens;

/// <summary>
/// One place a model name can come from. <see cref="Kind"/> says what it is (a refusal lists the kinds tried);
/// <see cref="Resolve"/> loads the model, or returns null when the name is not of its kind.
/// </summary>
public sealed record ModelSource(string Kind, Func<string, LoadOptions, HookedTransformer?> Resolve);
