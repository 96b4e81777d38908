namespace Lens;

/// <summary>TransformerLens's normalization_type: "LN", "LNPre", "RMS", "RMSPre", or null
/// (<see cref="None"/>).</summary>
public enum NormalizationKind { None, LN, LNPre, RMS, RMSPre }

/// <summary>TransformerLens's positional_embedding_type that Lens computes ("alibi" is refused).</summary>
public enum PositionalEmbeddingKind { Standard, Rotary, Shortformer }

/// <summary>TransformerLens's attention_dir.</summary>
public enum AttentionDirection { Causal, Bidirectional }

/// <summary>TransformerLens's act_fn, every one Lens implements.</summary>
public enum ActivationFunction { Relu, Gelu, GeluNew, GeluFast, GeluPytorchTanh, Silu, Solu, SoluLn }

/// <summary>TransformerLens's init_mode; Lens initialises fresh weights with <see cref="Gpt2"/> only.</summary>
public enum InitMode { Gpt2, XavierUniform, XavierNormal, KaimingUniform, KaimingNormal, MuP }

/// <summary>One entry of TransformerLens's attn_types: a layer attends to every earlier key or within
/// window_size.</summary>
public enum AttentionKind { Global, Local }

/// <summary>
/// The JSON names of one enumerated config field, as TransformerLens writes them: a config.json's string is
/// looked up here once, when the field is set, and written back under the same name, so files round-trip.
/// </summary>
public sealed class ConfigChoices<T> where T : struct, Enum
{
    readonly (T Value, string Name)[] _choices;

    public ConfigChoices(string field, params (T Value, string Name)[] choices) { Field = field; _choices = choices; }

    /// <summary>The config field, e.g. <c>normalization_type</c>.</summary>
    public string Field { get; }

    public IEnumerable<string> Names => _choices.Select(c => c.Name);

    /// <summary>The value of a JSON name, or null for a name Lens does not know.</summary>
    public T? Find(string? name)
    {
        foreach (var (value, n) in _choices) if (n == name) return value;
        return null;
    }

    public string NameOf(T value)
    {
        foreach (var (v, n) in _choices) if (EqualityComparer<T>.Default.Equals(v, value)) return n;
        throw new ArgumentOutOfRangeException(nameof(value), value, $"no JSON name for {Field} value {value}");
    }

    /// <summary>The refusal of a name Lens does not know, naming the field, the value and the accepted
    /// values.</summary>
    public ArgumentException Unsupported(string? name, string? alsoAccepted = null) =>
        new($"config field '{Field}' = {(name is null ? "null" : $"\"{name}\"")} is not supported by Lens: " +
            $"use {Accepted(alsoAccepted)}");

    string Accepted(string? alsoAccepted) => Listing.Or(alsoAccepted is null ? Names : [.. Names, alsoAccepted]);
}

/// <summary>The enumerated fields of <see cref="HookedTransformerConfig"/> with TransformerLens's JSON names.</summary>
public static class ConfigChoices
{
    public static readonly ConfigChoices<NormalizationKind> Normalization = new("normalization_type",
        (NormalizationKind.LN, "LN"), (NormalizationKind.LNPre, "LNPre"), (NormalizationKind.RMS, "RMS"),
        (NormalizationKind.RMSPre, "RMSPre"));

    public static readonly ConfigChoices<PositionalEmbeddingKind> PositionalEmbedding = new("positional_embedding_type",
        (PositionalEmbeddingKind.Standard, "standard"), (PositionalEmbeddingKind.Rotary, "rotary"),
        (PositionalEmbeddingKind.Shortformer, "shortformer"));

    public static readonly ConfigChoices<AttentionDirection> AttentionDirection = new("attention_dir",
        (Lens.AttentionDirection.Causal, "causal"), (Lens.AttentionDirection.Bidirectional, "bidirectional"));

    public static readonly ConfigChoices<ActivationFunction> Activation = new("act_fn",
        (ActivationFunction.Relu, "relu"), (ActivationFunction.Gelu, "gelu"), (ActivationFunction.GeluNew, "gelu_new"),
        (ActivationFunction.GeluFast, "gelu_fast"), (ActivationFunction.GeluPytorchTanh, "gelu_pytorch_tanh"),
        (ActivationFunction.Silu, "silu"), (ActivationFunction.SoluLn, "solu_ln"), (ActivationFunction.Solu, "solu"));

    public static readonly ConfigChoices<InitMode> InitMode = new("init_mode",
        (Lens.InitMode.Gpt2, "gpt2"), (Lens.InitMode.XavierUniform, "xavier_uniform"),
        (Lens.InitMode.XavierNormal, "xavier_normal"),
        (Lens.InitMode.KaimingUniform, "kaiming_uniform"), (Lens.InitMode.KaimingNormal, "kaiming_normal"),
        (Lens.InitMode.MuP, "muP"));

    public static readonly ConfigChoices<AttentionKind> AttentionKind = new("attn_types",
        (Lens.AttentionKind.Global, "global"), (Lens.AttentionKind.Local, "local"));
}
