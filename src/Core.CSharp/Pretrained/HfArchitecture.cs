using static TorchSharp.torch;

namespace Lens.Pretrained;

/// <summary>One converted tensor: its TransformerLens parameter name and how to produce it in a given dtype.</summary>
public sealed record ConvertedWeight(string Name, Func<ScalarType, Tensor> Load);

/// <summary>
/// A Hugging Face architecture that TransformerLens converts: its config mapping
/// (TransformerLens's <c>convert_hf_model_config</c>) and its weight mapping (<c>convert_*_weights</c>).
/// Weights are produced one tensor at a time, straight from the memory-mapped checkpoint.
/// </summary>
public abstract class HfArchitecture
{
    /// <summary>HF's class names this converter handles (config.json's <c>architectures[0]</c>).</summary>
    public abstract IReadOnlyList<string> Names { get; }

    /// <summary>The base-model prefix of the checkpoint's tensor names (<c>transformer.</c>, <c>gpt_neox.</c>,
    /// <c>model.</c>).</summary>
    public abstract string BasePrefix { get; }

    /// <summary>The TransformerLens config of a checkpoint's config.json (before any weight processing).</summary>
    public abstract HookedTransformerConfig Config(HfConfig hf, string architecture);

    /// <summary>Every parameter of the converted model under TransformerLens's names (omitted biases are
    /// zeros).</summary>
    public abstract IEnumerable<ConvertedWeight> Weights(CheckpointWeights ckpt, HookedTransformerConfig cfg);

    static readonly HfArchitecture[] All =
        [new Gpt2Architecture(), new GptNeoArchitecture(), new GptNeoXArchitecture(), new LlamaArchitecture(),
        new GemmaArchitecture(), new Qwen3Architecture(),
        new MixtralArchitecture(), new Phi3Architecture(), new GptjArchitecture(), new OptArchitecture(),
        new OlmoeArchitecture()];

    /// <summary>
    /// The Llama-style attention shape of a Hugging Face config: hidden_size, num_attention_heads,
    /// num_key_value_heads (null when every head has its own) and head_dim (d_model / heads when absent or 0).
    /// </summary>
    protected static void ReadAttentionShape(HookedTransformerConfig cfg, HfConfig hf, int defaultDModel)
    {
        int d = hf.Int("hidden_size", defaultDModel), heads = hf.Int("num_attention_heads", 32);
        int kv = hf.IntOrNull("num_key_value_heads") ?? heads;
        cfg.DModel = d;
        cfg.NHeads = heads;
        cfg.DHead = hf.IntOrNull("head_dim") is int hd && hd > 0 ? hd : d / heads;
        cfg.NKeyValueHeads = kv != heads ? kv : null;
    }

    /// <summary>
    /// Hugging Face's sliding_window as local attention on every layer (TransformerLens ignores it for Mistral's
    /// descendants); a null or non-positive window leaves every layer global.
    /// </summary>
    protected static void SlidingWindowOnEveryLayer(HookedTransformerConfig cfg, int? window)
    {
        if (window is not > 0) return;
        cfg.UseLocalAttn = true;
        cfg.WindowSize = window;
        cfg.AttnTypes = Enumerable.Repeat("local", cfg.NLayers).ToArray();
    }

    /// <summary>Scaled rotary frequencies are not computed by this model: refused rather than ignored.</summary>
    protected static void RefuseRopeScaling(HfConfig hf)
    {
        if (hf.Object("rope_scaling") is not { } scaling) return;
        var kind = scaling["rope_type"]?.GetValue<string>() ?? scaling["type"]?.GetValue<string>() ?? "default";
        if (kind != "default")
            throw new CheckpointException($"{hf.Source}: rope_scaling of type '{kind}' is not supported for "
                + $"{hf.Architecture} (Lens computes unscaled rotary here; use a checkpoint without rope_scaling)");
    }

    /// <summary>The architecture names that can be loaded.</summary>
    public static IEnumerable<string> Supported => All.SelectMany(a => a.Names);

    public static HfArchitecture For(string architecture, string source) =>
        All.FirstOrDefault(a => a.Names.Contains(architecture))
        ?? throw new CheckpointException(
        $"{source}: architecture '{architecture}' is not supported (supported: {string.Join(", ", Supported)})");

    // ---- helpers shared by the converters --------------------------------------------------------

    /// <summary>Runs a conversion in a dispose scope so the loaded tensor and the intermediate views are
    /// released.</summary>
    protected static ConvertedWeight W(string name, Func<ScalarType, Tensor> convert) =>
        new(name, dtype =>
        {
            using var scope = NewDisposeScope();
            return convert(dtype).MoveToOuterDisposeScope();
        });

    /// <summary>nn.Linear weight [heads·d_head, d_model] → TransformerLens [heads, d_model, d_head] ("(n h) m → n m
    /// h").</summary>
    protected static Tensor InputHeads(Tensor w, int heads) => w.view(heads, -1, w.shape[1]).permute(0, 2, 1);

    /// <summary>nn.Linear output weight [d_model, heads·d_head] → TransformerLens W_O [heads, d_head, d_model] ("m (n
    /// h) → n h m").</summary>
    protected static Tensor OutputHeads(Tensor w, int heads) => w.view(w.shape[0], heads, -1).permute(1, 2, 0);

    /// <summary>
    /// A mixture of experts' per-expert weights (TransformerLens's mlp.experts.{e}.W_gate/W_in/W_out), from either
    /// layout: one file per projection (<paramref name="gate"/>, <paramref name="up"/>, <paramref name="down"/> under
    /// <c>{moe}experts.{e}.</c>), or transformers 5's fused <c>{moe}experts.gate_up_proj</c> / <c>down_proj</c>.
    /// </summary>
    protected static IEnumerable<ConvertedWeight> ExpertWeights(CheckpointWeights ckpt, string moe, string block,
        int experts, long dMlp, string gate, string up, string down)
    {
        bool fused = ckpt.Contains(moe + "experts.gate_up_proj");
        for (int e = 0; e < experts; e++)
        {
            int expert = e;
            string x = $"{moe}experts.{e}.", m = $"{block}mlp.experts.{e}.";
            if (fused)
            {
                yield return W(m + "W_gate.weight",
                    t => ckpt.Load(moe + "experts.gate_up_proj", t)[expert].narrow(0, 0, dMlp));
                yield return W(m + "W_in.weight",
                    t => ckpt.Load(moe + "experts.gate_up_proj", t)[expert].narrow(0, dMlp, dMlp));
                yield return W(m + "W_out.weight", t => ckpt.Load(moe + "experts.down_proj", t)[expert]);
            }
            else
            {
                yield return W(m + "W_gate.weight", t => ckpt.Load(x + gate + ".weight", t));
                yield return W(m + "W_in.weight", t => ckpt.Load(x + up + ".weight", t));
                yield return W(m + "W_out.weight", t => ckpt.Load(x + down + ".weight", t));
            }
        }
    }

    /// <summary>A per-head bias [heads·d_head] → [heads, d_head].</summary>
    protected static Tensor BiasHeads(Tensor b, int heads) => b.view(heads, -1);

    /// <summary>Python's round() (ties to even), as TransformerLens computes rotary_dim.</summary>
    protected static int PyRound(double x) => (int)Math.Round(x, MidpointRounding.ToEven);

    /// <summary>Fields every converted config shares (TransformerLens's get_pretrained_model_config).</summary>
    protected static HookedTransformerConfig Base(string architecture) => new()
    {
        OriginalArchitecture = architecture,
        InitWeights = false,
    };
}
