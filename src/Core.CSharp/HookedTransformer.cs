using Lens.Components;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens;

public enum ReturnType { Logits, Loss, Both, None }

/// <summary>What a forward pass returns; owns its tensors.</summary>
public sealed record ModelOutput(Tensor? Logits, Tensor? Loss) : IDisposable
{
    /// <summary>The residual stream [batch, pos, d_model] of a run with stop_at_layer (TransformerLens returns it as
    /// the output).</summary>
    public Tensor? Residual { get; init; }

    public void Dispose() { Logits?.Dispose(); Loss?.Dispose(); Residual?.Dispose(); }
}

/// <summary>
/// A transformer whose every activation is a named <see cref="HookPoint"/>, with TransformerLens's
/// components, names and numbers. The whole data path is
/// <see cref="Forward(Tensor, ReturnType, bool, Tensor?, int?, int?, Tensor?)"/>:
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
    public readonly HookPoint HookTokens, HookEmbed, HookPosEmbed;
    /// <summary>Makes every hook point under its full name and records their order (the hook_dict's).</summary>
    readonly HookPointFactory _hooks = new();
    readonly Dictionary<string, HookPoint> _hookDict;

    public HookedTransformerConfig Config { get; }

    static HookedTransformer() => Lens.Native.TorchThreads.Configure();

    public HookedTransformer(HookedTransformerConfig config) : base("HookedTransformer")
    {
        Config = config.Complete();
        var dtype = DtypeOf(config.Dtype);
        embed = new Embed(config, dtype);
        bool learnedPositions =
            config.PositionalEmbedding is PositionalEmbeddingKind.Standard or PositionalEmbeddingKind.Shortformer;
        if (learnedPositions) pos_embed = new PosEmbed(config, dtype);
        // Components are made in the order of the forward pass, so their hook points are recorded in it.
        HookTokens = _hooks.Create("hook_tokens", listed: config.UseHookTokens);
        HookEmbed = _hooks.Create("hook_embed");
        HookPosEmbed = _hooks.Create("hook_pos_embed", listed: learnedPositions);
        blocks = new ModuleList<TransformerBlock>(Enumerable.Range(0, config.NLayers)
            .Select(l => new TransformerBlock(_hooks.Under($"blocks.{l}"), l, config, dtype)).ToArray());
        if (FinalNormalizationKind(config) is var finalNorm && finalNorm != NormalizationKind.None)
            ln_final = new Normalization(_hooks.Under("ln_final"), finalNorm, config.DModel, config.Eps, dtype);
        unembed = new Unembed(_hooks.Under("unembed"), config, dtype);
        RegisterComponents();
        foreach (var (_, p) in named_parameters()) p.requires_grad = false;
        _hookDict = _hooks.Ordered.ToDictionary(h => h.Name);
        if (config.InitWeights && config.Initialization != InitMode.Gpt2)
            throw new ArgumentException($"config field 'init_mode' = \"{config.InitMode}\" is not supported by Lens " +
                $"for fresh weights: use \"gpt2\", or load weights (init_weights false)");
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

    /// <summary>Every hook point by full name, in the order the forward pass reaches them.</summary>
    public IReadOnlyDictionary<string, HookPoint> HookDict => _hookDict;

    public IEnumerable<string> HookNames => _hookDict.Keys;

    /// <summary>The hook point of a full or shorthand name; an unknown name suggests the nearest valid ones.</summary>
    public HookPoint Hook(string name)
    {
        if (_hookDict.TryGetValue(name, out var h) || _hookDict.TryGetValue(ActName.Get(name), out h)) return h;
        var near = Suggestions.Nearest(name, _hookDict.Keys, 3);
        throw new ArgumentException($"unknown hook point '{name}'"
            + (near.Count > 0 ? $"; did you mean {string.Join(", ", near.Select(n => $"'{n}'"))}?" : ""));
    }

    // ---- forward -------------------------------------------------------------------------------

    /// <summary>Logits [batch, pos, d_vocab_out] of int64 tokens [batch, pos] (or [pos]).</summary>
    public Tensor Forward(Tensor tokens) => Forward(tokens, ReturnType.Logits).Logits!;

    /// <summary>
    /// The forward pass as TransformerLens's <c>model(input, ...)</c>.
    /// <paramref name="attentionMask"/> [batch, pos] (1 on real tokens, 0 on pads): pad keys are never
    /// attended, positions are <c>cumsum(mask) - 1</c> (so left padding does not shift them), pad positions
    /// get a zero positional embedding, and the loss counts only pairs of real tokens.
    /// <paramref name="stopAtLayer"/> k runs the embedding and blocks [0, k) (negative k counts from the end)
    /// and returns the residual stream in <see cref="ModelOutput.Residual"/>.
    /// <paramref name="startAtLayer"/> k takes <paramref name="input"/> as the residual stream
    /// [batch, pos, d_model] entering block k and runs the rest; the loss then needs <paramref name="tokens"/>.
    /// </summary>
    public ModelOutput Forward(Tensor input, ReturnType returnType, bool lossPerToken = false,
        Tensor? attentionMask = null, int? startAtLayer = null, int? stopAtLayer = null, Tensor? tokens = null) =>
        Run(input, returnType, lossPerToken, null, attentionMask, startAtLayer, stopAtLayer, tokens);

    /// <summary>
    /// The forward pass with a key-value cache: tokens are the new positions only, and
    /// <paramref name="attentionMask"/> (if any) their mask; the cache keeps the mask of earlier positions.
    /// </summary>
    public ModelOutput Forward(Tensor tokens, ReturnType returnType, bool lossPerToken, KeyValueCache? pastKv,
        Tensor? attentionMask = null) =>
        Run(tokens, returnType, lossPerToken, pastKv, attentionMask, null, null, null);

    ModelOutput Run(Tensor input, ReturnType returnType, bool lossPerToken, KeyValueCache? pastKv,
        Tensor? attentionMask, int? startAtLayer, int? stopAtLayer, Tensor? lossTokens)
    {
        ThrowBackwardHookErrors();
        using var scope = NewDisposeScope();
        // Training inherits the caller's mode; a backward hook needs a graph even inside a caller's no_grad.
        using var grad = Training ? null : GradientsWanted ? enable_grad() : no_grad();
        int start = startAtLayer is int s0 ? LayerIndex(s0, "start_at_layer") : 0;
        int stop = stopAtLayer is int s1 ? LayerIndex(s1, "stop_at_layer") : blocks.Count;
        if (stopAtLayer is not null && returnType is ReturnType.Loss or ReturnType.Both)
            throw new ArgumentException(
                "stop_at_layer returns the residual stream, not a loss: ask for ReturnType.Logits or None");
        Tensor residual;
        Tensor? tokens, shortformer = null;
        PaddingMask? padding = null;
        if (startAtLayer is null)
        {
            var ids = input.dim() == 1 ? input.unsqueeze(0) : input;
            if (ids.dim() != 2)
                throw new ArgumentException(
                    $"tokens must be [pos] or [batch, pos] (got shape [{string.Join(", ", input.shape)}])");
            if (ids.device != Device) ids = ids.to(Device);
            long offset = pastKv?.Length ?? 0;
            var mask = CheckMask(attentionMask, ids.shape);
            if (pastKv is not null && (mask is not null || pastKv.AttentionMask is not null))
                mask = pastKv.AppendAttentionMask(mask, ids.shape[0], ids.shape[1], Device);
            if (mask is not null) padding = PaddingMask.Create(mask, offset);
            (residual, shortformer) = Embed(ids, offset, padding);
            tokens = ids;
        }
        else
        {
            if (pastKv is not null)
                throw new ArgumentException("start_at_layer cannot be combined with a key-value cache");
            if (Config.PositionalEmbedding == PositionalEmbeddingKind.Shortformer)
                throw new ArgumentException("start_at_layer on a shortformer model would run without positions (they " +
                    "enter every block's queries and keys): run from the tokens instead");
            residual = GradientSource(input.device != Device ? input.to(Device) : input);
            if (residual.dim() != 3 || residual.shape[2] != Config.DModel)
                throw new ArgumentException($"with start_at_layer the input is the residual stream [batch, pos, " +
                    $"d_model = {Config.DModel}] (got shape [{string.Join(", ", input.shape)}])");
            tokens = lossTokens?.dim() == 1 ? lossTokens.unsqueeze(0) : lossTokens;
            if (tokens is not null && tokens.device != Device) tokens = tokens.to(Device);
            var mask = CheckMask(attentionMask, residual.shape.AsSpan(0, 2));
            if (mask is not null) padding = PaddingMask.Create(mask, 0);
        }
        for (int l = start; l < stop; l++)
            residual = blocks[l].forward(residual, pastKv?[l], padding, shortformer);
        if (stopAtLayer is not null)
            return new ModelOutput(null, null) { Residual = residual.MoveToOuterDisposeScope() };
        if (returnType == ReturnType.None) return new ModelOutput(null, null);
        if (ln_final is not null) residual = ln_final.forward(residual);
        var logits = unembed.forward(residual);
        // TransformerLens caps after unembed.hook_out, so that hook keeps the uncapped logits.
        if (Config.OutputLogitsSoftCap > 0)
            logits = logits.div(Config.OutputLogitsSoftCap).tanh_().mul_(Config.OutputLogitsSoftCap);
        Tensor? loss = null;
        if (returnType is ReturnType.Loss or ReturnType.Both)
        {
            if (tokens is null)
                throw new ArgumentException("a loss from start_at_layer needs the tokens (tokens: ...)");
            if (tokens.shape[0] != logits.shape[0] || tokens.shape[1] != logits.shape[1])
                throw new ArgumentException($"tokens [{string.Join(", ", tokens.shape)}] do not match the input's " +
                    $"[batch, pos] [{logits.shape[0]}, {logits.shape[1]}]");
            loss = LossFunctions.LmCrossEntropy(logits, tokens, lossPerToken, padding?.QueryReal);
        }
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

    /// <summary>A layer index with Python's slice semantics (−1 is the last block), refused when out of
    /// range.</summary>
    int LayerIndex(int layer, string what)
    {
        int n = blocks.Count;
        if (layer < -n || layer > n)
            throw new ArgumentException($"{what} = {layer} is out of range for a model of {n} layers (use {-n} … {n})");
        return layer < 0 ? n + layer : layer;
    }

    /// <summary>The mask on the model's device after checking it is [batch, pos] of 0s and 1s; null stays
    /// null.</summary>
    Tensor? CheckMask(Tensor? mask, ReadOnlySpan<long> shape)
    {
        if (mask is null) return null;
        if (mask.dim() == 1 && shape[0] == 1) mask = mask.unsqueeze(0);
        if (mask.dim() != 2 || mask.shape[0] != shape[0] || mask.shape[1] != shape[1])
            throw new ArgumentException($"attention_mask has shape [{string.Join(", ", mask.shape)}] but the input " +
                $"is [batch, pos] = [{shape[0]}, {shape[1]}]");
        if (mask.is_floating_point() || mask.is_complex())
            throw new ArgumentException(
                $"attention_mask must hold integers or booleans (1 = real token, 0 = pad), not {mask.dtype}");
        if (Config.AttentionDirection != AttentionDirection.Causal)
            throw new ArgumentException("attention masks apply to causal models only (TransformerLens ignores them " +
                "with attention_dir bidirectional)");
        if (mask.device != Device) mask = mask.to(Device);
        var values = mask.to(ScalarType.Int64);
        using (var bad = values.ne(0).logical_and(values.ne(1)).any())
            if (bad.item<bool>())
                throw new ArgumentException("attention_mask must hold only 0 (pad) and 1 (real token)");
        return mask;
    }

    /// <summary>
    /// The residual stream entering block 0: hook_embed (+ hook_pos_embed for standard positions). For
    /// shortformer, hook_pos_embed is returned separately: it enters only the queries and keys.
    /// </summary>
    internal (Tensor Residual, Tensor? ShortformerPosEmbed) Embed(Tensor tokens, long positionOffset,
        PaddingMask? padding = null)
    {
        tokens = HookTokens.Run(tokens);
        var e = HookEmbed.Run(GradientSource(embed.forward(tokens)));
        if (pos_embed is null) return (e, null);
        var p = HookPosEmbed.Run(GradientSource(padding is null
            ? pos_embed.forward(tokens.shape[0], tokens.shape[1], positionOffset)
            : pos_embed.forward(padding)));
        return Config.PositionalEmbedding == PositionalEmbeddingKind.Shortformer ? (e, p) : (e + p, null);
    }

    /// <summary>
    /// Mean (or per-token [batch, pos-1]) next-token cross-entropy loss; with an attention mask only pairs
    /// of real tokens count (per-token losses elsewhere are 0), as TransformerLens's lm_cross_entropy_loss.
    /// </summary>
    public Tensor Loss(Tensor tokens, bool perToken = false, Tensor? attentionMask = null) =>
        Forward(tokens, ReturnType.Loss, perToken, attentionMask).Loss!;

    /// <summary>
    /// With gradients on but frozen weights, the embeddings are where the graph starts: a copy that
    /// requires grad (a copy, not a leaf, so that hooks may still edit it in place).
    /// </summary>
    static Tensor GradientSource(Tensor embedding) =>
        is_grad_enabled() && !embedding.requires_grad ? embedding.detach().requires_grad_(true).clone() : embedding;

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
            // Mixture-of-experts weights are nn.Linear weights ("mlp.experts.0.W_in.weight"): TransformerLens matches
            // "W_" anywhere.
            if (leaf.StartsWith("W_", StringComparison.Ordinal) || leaf.StartsWith("_W_", StringComparison.Ordinal)
                || name.Contains(".W_")) p.normal_(0, Config.InitializerRange, generator: g);
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
        ScalarType.Float32 => "float32",
        ScalarType.Float16 => "float16",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float64 => "float64",
        _ => t.ToString(),
    };

    public override string ToString() =>
        $"HookedTransformer({Config.ModelName}: {Config.NLayers} layers, d_model {Config.DModel}, {Config.NHeads} " +
            $"heads, d_vocab {Config.DVocab})";
}
