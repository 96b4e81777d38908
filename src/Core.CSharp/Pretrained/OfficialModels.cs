namespace Lens.Pretrained;

/// <summary>A model known by name: TransformerLens's official name (its hub id) and its aliases.</summary>
/// <param name="Name">The official name, as TransformerLens's OFFICIAL_MODEL_NAMES spells it; it is the hub repository
/// id.</param>
/// <param name="Aliases">Other names that resolve to it (TransformerLens's MODEL_ALIASES).</param>
/// <param name="Family">The architecture family, for listings.</param>
/// <param name="InTransformerLens">False for the few names Lens adds (TransformerLens has no TinyLlama entry).</param>
public sealed record OfficialModel(string Name, IReadOnlyList<string> Aliases, string Family,
    bool InTransformerLens = true)
{
    public string RepoId => Name;
}

/// <summary>
/// The model names Lens resolves without a hub id: TransformerLens v3.5.1's official names and
/// aliases for GPT-2, Pythia, GPT-Neo, TinyStories, Llama, Qwen2.5, Mistral, Gemma 1/2/3, Qwen3, Mixtral, Phi-3,
/// GPT-J and OPT, matched
/// case-insensitively as TransformerLens does (<c>gpt2-small</c> → <c>gpt2</c>,
/// <c>pythia-70m</c> → <c>EleutherAI/pythia-70m</c>, <c>tiny-stories-1M</c> → <c>roneneldan/TinyStories-1M</c>).
/// </summary>
public static class OfficialModels
{
    static OfficialModel M(string name, string family, params string[] aliases) => new(name, aliases, family);

    public static IReadOnlyList<OfficialModel> All { get; } =
    [
        M("gpt2", "GPT-2", "gpt2-small"),
        M("gpt2-medium", "GPT-2"),
        M("gpt2-large", "GPT-2"),
        M("gpt2-xl", "GPT-2"),
        M("distilgpt2", "GPT-2", "distillgpt2", "distill-gpt2", "distil-gpt2", "gpt2-xs"),
        M("EleutherAI/pythia-14m", "Pythia", "pythia-14m"),
        M("EleutherAI/pythia-31m", "Pythia", "pythia-31m"),
        M("EleutherAI/pythia-70m", "Pythia", "pythia-70m", "pythia", "EleutherAI/pythia-19m", "pythia-19m"),
        M("EleutherAI/pythia-160m", "Pythia", "pythia-160m", "EleutherAI/pythia-125m", "pythia-125m"),
        M("EleutherAI/pythia-410m", "Pythia", "pythia-410m", "EleutherAI/pythia-350m", "pythia-350m"),
        M("EleutherAI/pythia-1b", "Pythia", "pythia-1b", "EleutherAI/pythia-800m", "pythia-800m"),
        M("EleutherAI/pythia-1.4b", "Pythia", "pythia-1.4b", "EleutherAI/pythia-1.3b", "pythia-1.3b"),
        M("EleutherAI/pythia-70m-deduped", "Pythia", "pythia-70m-deduped", "EleutherAI/pythia-19m-deduped",
            "pythia-19m-deduped"),
        M("EleutherAI/pythia-160m-deduped", "Pythia", "pythia-160m-deduped", "EleutherAI/pythia-125m-deduped",
            "pythia-125m-deduped"),
        M("EleutherAI/pythia-410m-deduped", "Pythia", "pythia-410m-deduped", "EleutherAI/pythia-350m-deduped",
            "pythia-350m-deduped"),
        M("EleutherAI/pythia-1b-deduped", "Pythia", "pythia-1b-deduped", "EleutherAI/pythia-800m-deduped",
            "pythia-800m-deduped"),
        M("EleutherAI/pythia-1.4b-deduped", "Pythia", "pythia-1.4b-deduped", "EleutherAI/pythia-1.3b-deduped",
            "pythia-1.3b-deduped"),
        M("EleutherAI/gpt-neo-125M", "GPT-Neo", "gpt-neo-125M", "gpt-neo-small", "neo-small", "neo"),
        M("roneneldan/TinyStories-1M", "TinyStories (GPT-Neo)", "tiny-stories-1M"),
        M("roneneldan/TinyStories-3M", "TinyStories (GPT-Neo)", "tiny-stories-3M"),
        M("roneneldan/TinyStories-8M", "TinyStories (GPT-Neo)", "tiny-stories-8M"),
        M("roneneldan/TinyStories-28M", "TinyStories (GPT-Neo)", "tiny-stories-28M"),
        M("roneneldan/TinyStories-33M", "TinyStories (GPT-Neo)", "tiny-stories-33M"),
        M("roneneldan/TinyStories-1Layer-21M", "TinyStories (GPT-Neo)", "tiny-stories-1L-21M"),
        M("roneneldan/TinyStories-2Layers-33M", "TinyStories (GPT-Neo)", "tiny-stories-2L-33M"),
        M("roneneldan/TinyStories-Instruct-1M", "TinyStories (GPT-Neo)", "tiny-stories-instruct-1M"),
        M("roneneldan/TinyStories-Instruct-33M", "TinyStories (GPT-Neo)", "tiny-stories-instruct-33M"),
        new("TinyLlama/TinyLlama-1.1B-Chat-v1.0", ["tinyllama", "tinyllama-1.1b-chat"], "Llama",
            InTransformerLens: false), M("meta-llama/Llama-3.2-1B", "Llama"),
        M("meta-llama/Llama-3.2-1B-Instruct", "Llama"),
        M("Qwen/Qwen2.5-0.5B", "Qwen2", "qwen2.5-0.5b"),
        M("Qwen/Qwen2.5-0.5B-Instruct", "Qwen2", "qwen2.5-0.5b-instruct"),
        M("mistralai/Mistral-7B-v0.1", "Mistral", "mistral-7b"),
        M("mistralai/Mistral-7B-Instruct-v0.1", "Mistral", "mistral-7b-instruct"),
        M("google/gemma-2b", "Gemma", "gemma-2b"),
        M("google/gemma-2b-it", "Gemma", "gemma-2b-it"),
        M("google/gemma-7b", "Gemma", "gemma-7b"),
        M("google/gemma-7b-it", "Gemma", "gemma-7b-it"),
        M("google/gemma-2-2b", "Gemma 2", "gemma-2-2b"),
        M("google/gemma-2-2b-it", "Gemma 2", "gemma-2-2b-it"),
        M("google/gemma-2-9b", "Gemma 2", "gemma-2-9b"),
        M("google/gemma-2-9b-it", "Gemma 2", "gemma-2-9b-it"),
        M("google/gemma-2-27b", "Gemma 2", "gemma-2-27b"),
        M("google/gemma-2-27b-it", "Gemma 2", "gemma-2-27b-it"),
        M("google/gemma-3-270m", "Gemma 3", "gemma-3-270m"),
        M("google/gemma-3-270m-it", "Gemma 3", "gemma-3-270m-it"),
        M("google/gemma-3-1b-pt", "Gemma 3", "gemma-3-1b-pt"),
        M("google/gemma-3-1b-it", "Gemma 3", "gemma-3-1b-it"),
        M("google/gemma-3-4b-pt", "Gemma 3", "gemma-3-4b-pt"),
        M("google/gemma-3-4b-it", "Gemma 3", "gemma-3-4b-it"),
        M("google/gemma-3-12b-pt", "Gemma 3", "gemma-3-12b-pt"),
        M("google/gemma-3-12b-it", "Gemma 3", "gemma-3-12b-it"),
        M("google/gemma-3-27b-pt", "Gemma 3", "gemma-3-27b-pt"),
        M("google/gemma-3-27b-it", "Gemma 3", "gemma-3-27b-it"),
        M("google/medgemma-4b-pt", "Gemma 3", "medgemma-4b-pt"),
        M("google/medgemma-4b-it", "Gemma 3", "medgemma-4b-it"),
        M("google/medgemma-27b-it", "Gemma 3", "medgemma-27b-it"),
        M("google/medgemma-27b-text-it", "Gemma 3", "medgemma-27b-text-it"),
        M("Qwen/Qwen3-0.6B", "Qwen3", "qwen3-0.6b"),
        M("Qwen/Qwen3-0.6B-Base", "Qwen3", "qwen3-0.6b-base"),
        M("Qwen/Qwen3-1.7B", "Qwen3", "qwen3-1.7b"),
        M("Qwen/Qwen3-4B", "Qwen3", "qwen3-4b"),
        M("Qwen/Qwen3-8B", "Qwen3", "qwen3-8b"),
        M("Qwen/Qwen3-14B", "Qwen3", "qwen3-14b"),
        M("mistralai/Mixtral-8x7B-v0.1", "Mixtral", "mixtral", "mixtral-8x7b"),
        M("mistralai/Mixtral-8x7B-Instruct-v0.1", "Mixtral", "mixtral-instruct", "mixtral-8x7b-instruct"),
        M("microsoft/Phi-3-mini-4k-instruct", "Phi-3", "phi-3"),
        M("EleutherAI/gpt-j-6B", "GPT-J", "gpt-j-6B", "gpt-j", "gptj"),
        M("facebook/opt-125m", "OPT", "opt-125m", "opt-small", "opt"),
        M("facebook/opt-1.3b", "OPT", "opt-1.3b", "opt-medium"),
        M("facebook/opt-2.7b", "OPT", "opt-2.7b", "opt-large"),
        M("facebook/opt-6.7b", "OPT", "opt-6.7b", "opt-xl"),
        M("facebook/opt-13b", "OPT", "opt-13b", "opt-xxl"),
        M("facebook/opt-30b", "OPT", "opt-30b", "opt-xxxl"),
        M("facebook/opt-66b", "OPT", "opt-66b", "opt-xxxxl"),
    ];

    static readonly Dictionary<string, OfficialModel> ByLowerName = BuildIndex();

    static Dictionary<string, OfficialModel> BuildIndex()
    {
        var index = new Dictionary<string, OfficialModel>(StringComparer.Ordinal);
        foreach (var m in All)
        {
            foreach (var alias in m.Aliases) index[alias.ToLowerInvariant()] = m;
            index[m.Name.ToLowerInvariant()] = m;
        }
        return index;
    }

    /// <summary>The model a name or alias (any case) stands for, or null.</summary>
    public static OfficialModel? TryGet(string name) => ByLowerName.GetValueOrDefault(name.Trim().ToLowerInvariant());

    /// <summary>The official name of a name or alias; unknown names get the nearest known names in the
    /// message.</summary>
    public static string GetOfficialName(string name) => TryGet(name)?.Name
        ?? throw new ArgumentException($"'{name}' is not a known model name" + Suggest(name));

    /// <summary>Every name that resolves (official names and aliases).</summary>
    public static IEnumerable<string> AllNames => All.SelectMany(m => m.Aliases.Prepend(m.Name));

    internal static string Suggest(string name)
    {
        var near = Suggestions.Nearest(name, AllNames, 3);
        return near.Count > 0 ? $"; did you mean {string.Join(", ", near.Select(n => $"'{n}'"))}?" : "";
    }
}
