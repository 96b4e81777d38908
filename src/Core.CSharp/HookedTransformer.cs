using Lens.Components;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens;

public enum ReturnType { Logits, Loss, Both, None }

/// <summary>What <see cref="HookedTransformer.Forward(Tensor, ReturnType, bool)"/> returns; owns its tensors.</summary>
public sealed record ModelOutput(Tensor? Logits, Tensor? Loss) : IDisposable
{
    public void Dispose() { Logits?.Dispose(); Loss?.Dispose(); }
}

/// <summary>
/// A transformer whose every activation is a named <see cref="HookPoint"/>, with TransformerLens's
/// components, names and numbers. The whole data path is <see cref="Forward(Tensor, ReturnType, bool)"/>:
/// tokens → embed (+ pos_embed) → blocks → ln_final → unembed.
/// </summary>
public sealed partial class HookedTransformer : nn.Module
{
#pragma warning disable IDE1006 // TransformerLens's module names
    public Embed embed;
    public PosEmbed? pos_embed;
    public ModuleList<TransformerBlock> blocks;
    public Normalization? ln_final;
    public Unembed unembed;
#pragma warning restore IDE1006
    public readonly HookPoint HookTokens = new("hook_tokens"), HookEmbed = new("hook_embed"), HookPosEmbed = new("hook_pos_embed");
    readonly Dictionary<string, HookPoint> _hookDict;

    public HookedTransformerConfig Config { get; }

    static HookedTransformer() => Lens.Native.TorchThreads.Configure();

    public HookedTransformer(HookedTransformerConfig config) : base("HookedTransformer")
    {
        Config = config.Complete();
        var dtype = DtypeOf(config.Dtype);
        embed = new Embed(config, dtype);
        if (config.PositionalEmbeddingType is "standard" or "shortformer") pos_embed = new PosEmbed(config, dtype);
        blocks = new ModuleList<TransformerBlock>(Enumerable.Range(0, config.NLayers).Select(l => new TransformerBlock(l, config, dtype)).ToArray());
        if (FinalNormalizationKind(config) is string finalNorm) ln_final = new Normalization("ln_final", finalNorm, config.DModel, config.Eps, dtype);
        unembed = new Unembed(config, dtype);
        RegisterComponents();
        foreach (var (_, p) in named_parameters()) p.requires_grad = false;
        _hookDict = EnumerateHookPoints().ToDictionary(h => h.Name);
        if (config.InitWeights) InitWeights(config.Seed);
    }

    /// <summary>A model with freshly initialised weights (TransformerLens's "gpt2" init).</summary>
    public static HookedTransformer Create(HookedTransformerConfig config) => new(config);

    public static ScalarType DtypeOf(string name) => name switch
    {
        "float32" or "f32" or "float" => ScalarType.Float32,
        "float16" or "f16" or "half" => ScalarType.Float16,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float64" or "f64" or "double" => ScalarType.Float64,
        _ => throw new ArgumentException($"unknown dtype '{name}' (float32, float16, bfloat16, float64)"),
    };

    public Device Device => embed.W_E.device;
    public ScalarType Dtype => embed.W_E.dtype;

    IEnumerable<HookPoint> EnumerateHookPoints()
    {
        if (Config.UseHookTokens) yield return HookTokens;
        yield return HookEmbed;
        if (pos_embed is not null) yield return HookPosEmbed;
        foreach (var b in blocks) foreach (var h in b.HookPoints) yield return h;
        if (ln_final is not null) foreach (var h in ln_final.HookPoints) yield return h;
        yield return unembed.HookIn;
        yield return unembed.HookOut;
    }

    /// <summary>Every hook point by full name, in the order the forward pass reaches them.</summary>
    public IReadOnlyDictionary<string, HookPoint> HookDict => _hookDict;

    public IEnumerable<string> HookNames => _hookDict.Keys;

    /// <summary>The hook point of a full or shorthand name; an unknown name suggests the nearest valid ones.</summary>
    public HookPoint Hook(string name)
    {
        if (_hookDict.TryGetValue(name, out var h) || _hookDict.TryGetValue(ActName.Get(name), out h)) return h;
        var near = Suggestions.Nearest(name, _hookDict.Keys, 3);
        throw new ArgumentException($"unknown hook point '{name}'" + (near.Count > 0 ? $"; did you mean {string.Join(", ", near.Select(n => $"'{n}'"))}?" : ""));
    }

    // ---- forward -------------------------------------------------------------------------------

    /// <summary>Logits [batch, pos, d_vocab_out] of int64 tokens [batch, pos] (or [pos]).</summary>
    public Tensor Forward(Tensor tokens) => Forward(tokens, ReturnType.Logits).Logits!;

    public ModelOutput Forward(Tensor tokens, ReturnType returnType, bool lossPerToken = false) =>
        Forward(tokens, returnType, lossPerToken, null);

    /// <summary>The forward pass; with a key-value cache, tokens are the new positions only.</summary>
    public ModelOutput Forward(Tensor tokens, ReturnType returnType, bool lossPerToken, KeyValueCache? pastKv)
    {
        ThrowBackwardHookErrors();
        using var scope = NewDisposeScope();
        // Training inherits the caller's mode; a backward hook needs a graph even inside a caller's no_grad.
        using var grad = Training ? null : GradientsWanted ? enable_grad() : no_grad();
        if (tokens.dim() == 1) tokens = tokens.unsqueeze(0);
        if (tokens.device != Device) tokens = tokens.to(Device);
        var residual = Embed(tokens, pastKv?.Length ?? 0);
        for (int l = 0; l < blocks.Count; l++)
            residual = blocks[l].forward(residual, pastKv?[l]);
        if (returnType == ReturnType.None) return new ModelOutput(null, null);
        if (ln_final is not null) residual = ln_final.forward(residual);
        var logits = unembed.forward(residual);
        Tensor? loss = returnType is ReturnType.Loss or ReturnType.Both ? LossFunctions.LmCrossEntropy(logits, tokens, lossPerToken) : null;
        return new ModelOutput(
            returnType is ReturnType.Logits or ReturnType.Both ? logits.MoveToOuterDisposeScope() : null,
            loss?.MoveToOuterDisposeScope());
    }

    bool Training => embed.W_E.requires_grad;

    /// <summary>
    /// The forward builds an autograd graph only when someone will differentiate it: while training and
    /// while any backward hook is attached (gradient caches and attribution patching attach them).
    /// </summary>
    bool GradientsWanted => _hookDict.Values.Any(h => h.HasBackwardHooks);

    /// <summary>The residual stream entering block 0: hook_embed (+ hook_pos_embed).</summary>
    internal Tensor Embed(Tensor tokens, long positionOffset)
    {
        tokens = HookTokens.Run(tokens);
        var e = HookEmbed.Run(GradientSource(embed.forward(tokens)));
        if (pos_embed is null) return e;
        var p = HookPosEmbed.Run(GradientSource(pos_embed.forward(tokens.shape[0], tokens.shape[1], positionOffset)));
        return e + p;
    }

    /// <summary>
    /// With gradients on but frozen weights, the embeddings are where the graph starts: a copy that
    /// requires grad (a copy, not a leaf, so that hooks may still edit it in place).
    /// </summary>
    static Tensor GradientSource(Tensor embedding) =>
        is_grad_enabled() && !embedding.requires_grad ? embedding.detach().requires_grad_(true).clone() : embedding;

    /// <summary>Mean (or per-token [batch, pos-1]) next-token cross-entropy loss.</summary>
    public Tensor Loss(Tensor tokens, bool perToken = false) => Forward(tokens, ReturnType.Loss, perToken).Loss!;

    // ---- weights -------------------------------------------------------------------------------

    /// <summary>Parameters under TransformerLens's state_dict names, in registration order.</summary>
    public IReadOnlyList<(string Name, Parameter Param)> Parameters() => named_parameters().ToList();

    /// <summary>Turns gradients on (training) or off (the default: analysis needs no autograd graph).</summary>
    public HookedTransformer RequiresGrad(bool on)
    {
        foreach (var (_, p) in named_parameters()) p.requires_grad = on;
        return this;
    }

    void InitWeights(int? seed)
    {
        using var g = seed is int s ? new Generator((ulong)s) : null;
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            var leaf = name[(name.LastIndexOf('.') + 1)..];
            if (leaf.StartsWith("W_") || leaf.StartsWith("_W_")) p.normal_(0, Config.InitializerRange, generator: g);
            else if (leaf == "w") p.fill_(1.0);
            else p.zero_();
        }
    }

    /// <summary>Moves the weights to a device and/or dtype, in place; returns this.</summary>
    public HookedTransformer To(Device? device = null, ScalarType? dtype = null)
    {
        if (device is not null) this.to(device);
        if (dtype is ScalarType dt) { this.to(dt); Config.Dtype = NameOf(dt); }
        if (device is not null) Config.Device = device.ToString();
        return this;
    }

    internal static string NameOf(ScalarType t) => t switch
    {
        ScalarType.Float32 => "float32", ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float64 => "float64", _ => t.ToString(),
    };

    public override string ToString() =>
        $"HookedTransformer({Config.ModelName}: {Config.NLayers} layers, d_model {Config.DModel}, {Config.NHeads} heads, d_vocab {Config.DVocab})";
}
