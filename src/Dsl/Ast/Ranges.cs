using System.Globalization;

namespace Lens.Dsl;

/// <summary>
/// A range rule of one number of the AST ("the batch size must be at least 1"). The record that holds the
/// number checks it at construction, so no code can build (and the printer never meets) a value the
/// language cannot write; the grammar checks the same rule at the token, so the error points there.
/// </summary>
internal sealed class Rule<T>(string noun, string requirement, Func<T, bool> holds) where T : struct
{
    public string Noun { get; } = noun;

    /// <summary>Null when the value keeps the rule; otherwise "NOUN REQUIREMENT, found VALUE"
    /// (<paramref name="written"/>: the value as written, when not plain).</summary>
    public string? Problem(T value, string? written = null) =>
        holds(value) ? null : $"{Noun} {requirement}, found {written ?? Text(value)}";

    public Valid Of(T value) => Problem(value) is { } problem ? throw new ArgumentException(problem) : default;

    public Valid Of(T? value) => value is { } v ? Of(v) : default;

    private static string Text(T value) =>
        value is double d ? Printer.Number(d) : Convert.ToString(value, CultureInfo.InvariantCulture)!;
}

/// <summary>
/// What a record's range check gives back: nothing, so that a record can hold its check in a private
/// property (every value equal to every other, so equality and JSON are unaffected).
/// </summary>
internal readonly record struct Valid
{
    public static Valid operator &(Valid a, Valid b) => default;

    /// <summary>A rule that is not about one number (a cpu device with an index, a ragged token batch).</summary>
    public static Valid Require(bool holds, string problem) => holds ? default : throw new ArgumentException(problem);

    /// <summary>A text the language cannot write empty (a path, a list of texts).</summary>
    public static Valid NotEmpty(string text, string what) => Require(text.Length > 0, $"{what} must not be empty");

    public static Valid NotEmpty<T>(IReadOnlyCollection<T> items, string what) =>
        Require(items.Count > 0, $"{what} must not be empty");
}

/// <summary>The range rules of the language, by what they constrain.</summary>
internal static class Ranges
{
    private static Rule<long> AtLeast(string noun, long min) => new(noun, $"must be at least {min}", v => v >= min);

    public static readonly Rule<long> Seed = AtLeast("the seed", 0);
    public static readonly Rule<long> DeviceIndex = AtLeast("the device index", 0);
    public static readonly Rule<long> SequenceLength = AtLeast("the sequence length", 1);
    public static readonly Rule<long> RepeatCount = AtLeast("the repeat count", 1);
    public static readonly Rule<long> BatchSize = AtLeast("the batch size", 1);
    public static readonly Rule<long> TokenId = AtLeast("the token id", 0);
    public static readonly Rule<long> Top = AtLeast("the count after 'top'", 1);
    public static readonly Rule<long> TopK = AtLeast("the count after 'top_k'", 1);
    public static readonly Rule<long> NewTokens = AtLeast("the number of tokens to generate", 1);
    public static readonly Rule<long> FeatureIndex = AtLeast("the feature index", 0);
    public static readonly Rule<long> Position = AtLeast("the position", 0);
    public static readonly Rule<long> StopAtLayer = AtLeast("the layer after 'stop_at_layer'", 0);
    public static readonly Rule<long> LayerIndex = AtLeast("the layer index", 0);
    public static readonly Rule<long> HeadIndex = AtLeast("the head index", 0);
    public static readonly Rule<long> NeuronIndex = AtLeast("the neuron index", 0);
    public static readonly Rule<long> FirstRow = AtLeast("the first row", 0);
    public static readonly Rule<double> Temperature = new("the temperature", "must be at least 0", v => v >= 0);
    public static readonly Rule<double> TopP = new("top_p", "must be above 0 and at most 1", v => v is > 0 and <= 1);
    public static readonly Rule<double> Tolerance = new("the tolerance", "must be at least 0", v => v >= 0);
}
