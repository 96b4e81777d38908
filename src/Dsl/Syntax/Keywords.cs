using System.Text.Json;
using System.Text.RegularExpressions;

namespace Lens.Dsl;

/// <summary>Stripe scores a head can be given (the `score` command and `where` filters).</summary>
public enum ScoreKind { Induction, PrevToken, DuplicateToken }

/// <summary>Built-in detection patterns of `detect` (TransformerLens detect_head).</summary>
public enum BuiltinPatternKind { PreviousToken, DuplicateToken, Induction }

/// <summary>How `detect` compares an attention pattern with the detection pattern (detect_head's
/// error_measure).</summary>
public enum ErrorMeasure { Mul, Abs }

/// <summary>What an ablated activation is replaced with.</summary>
public enum AblationMode { Zero, Mean, Resample }

/// <summary>Which QK/OV circuit `circuit` looks at.</summary>
public enum CircuitKind { Ov, Qk, FullOv, FullQk }

/// <summary>Which input of the later head `compose` measures composition into.</summary>
public enum CompositionKind { Q, K, V }

/// <summary>What `patch` patches (TransformerLens patching.get_act_patch_*).</summary>
public enum PatchTarget { ResidPre, AttnOut, MlpOut, Heads, HeadsByPos, Blocks }

/// <summary>The comparison in a `where` condition.</summary>
public enum Comparison { Greater, GreaterOrEqual, Less, LessOrEqual }

/// <summary>The comparison of an `expect` (`==` needs `within TOLERANCE`).</summary>
public enum ExpectOperator { Greater, GreaterOrEqual, Less, LessOrEqual, Equal }

/// <summary>How `expect generated ...` compares generated text with a string.</summary>
public enum TextComparison { Contains, Equals }

/// <summary>What `cache` does with the activation cache.</summary>
public enum CacheAction { Save, Load }

/// <summary>Where the model runs.</summary>
public enum DeviceKind { Cpu, Cuda }

/// <summary>A TransformerLens config flag that switches hook points on (`use attn_result`).</summary>
public enum ModelFlag { AttnResult, SplitQkvInput, AttnIn, HookMlpIn }

/// <summary>How a `model` reference is to be found (derived from its text, see
/// <see cref="ModelStatement.Kind"/>).</summary>
public enum ModelReferenceKind { Name, HubId, Path }

/// <summary>The words of one closed set of the language (score kinds, ablation modes, ...) and the values they stand
/// for.</summary>
/// <remarks>Words and values are kept in two arrays, read by index: each enum instantiates this class's code anew, and
/// fourteen tables built through tuples and LINQ cost every `lens` process about 250 JIT compilations.</remarks>
public sealed class KeywordTable<T> : IKeywordTable where T : struct, Enum
{
    private readonly string[] words;
    private readonly T[] values;

    public KeywordTable(params (string Word, T Value)[] entries)
    {
        words = new string[entries.Length];
        values = new T[entries.Length];
        for (var k = 0; k < entries.Length; k++) (words[k], values[k]) = entries[k];
    }

    /// <summary>Each member's name in snake_case (PrevToken is prev_token), in declaration order.</summary>
    public KeywordTable()
    {
        values = Enum.GetValues<T>();
        words = Keywords.SnakeCaseNames(typeof(T));
    }

    internal IEnumerable<(string Word, T Value)> Entries => words.Zip(values);

    /// <summary>The words, in the order the language documents them (a read-only view: the table is shared).</summary>
    public IReadOnlyList<string> Words => Array.AsReadOnly(words);

    public string Text(T value) =>
        Array.IndexOf(values, value) is var k and >= 0
            ? words[k]
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"no keyword for {typeof(T).Name}.{value}");

    public bool TryParse(string word, out T value)
    {
        var k = Array.IndexOf(words, word);
        value = k >= 0 ? values[k] : default;
        return k >= 0;
    }

    /// <summary>"a, b or c".</summary>
    public string Listing => Lens.Listing.Or(words);

    Type IKeywordTable.EnumType => typeof(T);

    string IKeywordTable.Text(Enum value) => Text((T)value);
}

/// <summary>A keyword table whatever its enum, so that any keyword value can be written (JSON, messages).</summary>
public interface IKeywordTable
{
    Type EnumType { get; }

    string Text(Enum value);
}

/// <summary>The vocabulary of the experiment language: commands, the closed keyword sets, reserved names.</summary>
public static partial class Keywords
{
    /// <summary>Every command word, in the order the language documents them: the grammar's command table.</summary>
    public static IReadOnlyList<string> Commands => Grammar.Instance.CommandWords;

    // Each member's name in snake_case, in the order the language documents them.
    public static readonly KeywordTable<ScoreKind> ScoreKinds = new();
    public static readonly KeywordTable<BuiltinPatternKind> BuiltinPatterns = new();
    public static readonly KeywordTable<AblationMode> AblationModes = new();
    public static readonly KeywordTable<CircuitKind> CircuitKinds = new();
    public static readonly KeywordTable<CompositionKind> CompositionKinds = new();
    public static readonly KeywordTable<PatchTarget> PatchTargets = new();
    public static readonly KeywordTable<TextComparison> TextComparisons = new();
    public static readonly KeywordTable<CacheAction> CacheActions = new();
    public static readonly KeywordTable<DeviceKind> Devices = new();
    public static readonly KeywordTable<ModelReferenceKind> ModelReferenceKinds = new();

    /// <summary>The flags of `use`: TransformerLens's config flag is "use_" + the word.</summary>
    public static readonly KeywordTable<ModelFlag> ModelFlags = new();

    public static readonly KeywordTable<ErrorMeasure> ErrorMeasures =
        new(("abs", ErrorMeasure.Abs), ("mul", ErrorMeasure.Mul));

    public static readonly KeywordTable<Comparison> Comparisons = new(
        (">", Comparison.Greater), (">=", Comparison.GreaterOrEqual), ("<", Comparison.Less),
            ("<=", Comparison.LessOrEqual));

    public static readonly KeywordTable<ExpectOperator> ExpectOperators = new(
        (">", ExpectOperator.Greater), (">=", ExpectOperator.GreaterOrEqual), ("<", ExpectOperator.Less),
            ("<=", ExpectOperator.LessOrEqual), ("==", ExpectOperator.Equal));

    /// <summary>The results an `expect` can read, by the word its target starts with.</summary>
    public static readonly IReadOnlyList<string> ExpectResults =
        ["induction", "prev_token", "duplicate_token", "detect", "loss", "predict", "attribute", "patch", "compose",
            "circuit",
         "logit", "logits", "run", "logit_lens", "cache", "print", "heads", "generated", "sae", "features"];

    /// <summary>Words that introduce an input source other than a let-bound name.</summary>
    public static readonly IReadOnlyList<string> InputWords = ["repeat", "tokens", "file", "dataset"];

    // Words a let-bound name may not be, because where names are read these words mean something else.
    private static readonly HashSet<string> reserved =
        ["heads", "where", "except", "and", "mlp", "attn", "neurons", "repeat", "tokens", "file", "input", "pattern",
            "feature"];

    private static readonly Dictionary<Type, IKeywordTable> TablesByEnum = new IKeywordTable[]
    {
        ScoreKinds, BuiltinPatterns, ErrorMeasures, AblationModes, CircuitKinds, CompositionKinds, PatchTargets,
        Comparisons, ExpectOperators, TextComparisons, CacheActions, Devices, ModelFlags, ModelReferenceKinds,
    }.ToDictionary(t => t.EnumType);

    /// <summary>The keyword of any enum value of the language (for JSON and messages).</summary>
    public static string Text(Enum value) =>
        TablesByEnum.TryGetValue(value.GetType(), out var table)
            ? table.Text(value)
            : throw new ArgumentOutOfRangeException(nameof(value), value, "not a keyword enum of the language");

    /// <summary>Whether text is an identifier: a letter or underscore, then letters, digits, underscores.</summary>
    public static bool IsIdentifier(string text) => IdentifierRegex().IsMatch(text);

    /// <summary>Whether text reads as a layer or head selector (L1, L1H4, L*H*), which a name may not look
    /// like.</summary>
    public static bool LooksLikeSelector(string text) =>
        text.Length >= 2 && text[0] == 'L' && (char.IsAsciiDigit(text[1]) || text[1] == '*');

    /// <summary>Whether a let may bind this name: an identifier that is neither reserved nor selector-like.</summary>
    public static bool IsValidName(string name) =>
        IsIdentifier(name) && !reserved.Contains(name) && !LooksLikeSelector(name);

    /// <summary>Whether the name is a reserved word (one that means something else where names are read).</summary>
    public static bool IsReservedName(string name) => reserved.Contains(name);

    /// <summary>An enum's member names in snake_case, in the order of their values (declaration order).</summary>
    internal static string[] SnakeCaseNames(Type enumType) =>
        [.. Enum.GetNames(enumType).Select(JsonNamingPolicy.SnakeCaseLower.ConvertName)];

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierRegex();
}
