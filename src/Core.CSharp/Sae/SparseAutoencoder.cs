using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Sae;

/// <summary>
/// An inference SAE with SAELens 6's semantics (sae.py, standard_sae.py, topk_sae.py, jumprelu_sae.py,
/// gated_sae.py): encode = input processing (dtype, hook_z flattening, <c>hook_sae_input</c>,
/// normalisation, b_dec subtraction) then the architecture's encoder (<c>hook_sae_acts_pre</c>,
/// <c>hook_sae_acts_post</c>); decode = <c>f @ W_dec + b_dec</c> (<c>hook_sae_recons</c>), output
/// normalisation, hook_z reshape; forward adds the error term (<c>hook_sae_error</c>) when asked and
/// ends at <c>hook_sae_output</c>. The hook points are named <c>&lt;hook&gt;.hook_sae_*</c> and can be
/// hooked directly or, once attached to a model, through the model like any other.
/// Owns its weights: dispose it.
/// </summary>
public sealed class SparseAutoencoder : IDisposable
{
#pragma warning disable IDE1006 // SAELens's parameter names
    public Tensor W_enc { get; private set; }
    public Tensor W_dec { get; private set; }
    public Tensor b_dec { get; private set; }
    /// <summary>standard, topk, jumprelu; null for gated.</summary>
    public Tensor? b_enc { get; private set; }
    /// <summary>jumprelu only: the threshold itself (not its log).</summary>
    public Tensor? threshold { get; private set; }
    /// <summary>gated only.</summary>
    public Tensor? b_gate { get; private set; }
    public Tensor? b_mag { get; private set; }
    public Tensor? r_mag { get; private set; }
#pragma warning restore IDE1006

    public SaeConfig Config { get; }
    /// <summary>Where the SAE reads and replaces activations.</summary>
    public string HookName => Config.HookName;
    /// <summary>Where the weights came from (a folder or params.npz), for messages.</summary>
    public string Source { get; }

    public HookPoint HookSaeInput { get; }
    public HookPoint HookSaeActsPre { get; }
    public HookPoint HookSaeActsPost { get; }
    public HookPoint HookSaeRecons { get; }
    public HookPoint HookSaeError { get; }
    public HookPoint HookSaeOutput { get; }

    /// <summary>The SAE's hook points in the order a forward with the error term reaches them.</summary>
    public IReadOnlyList<HookPoint> HookPoints =>
        [HookSaeInput, HookSaeActsPre, HookSaeActsPost, HookSaeRecons, HookSaeError, HookSaeOutput];

    public static readonly IReadOnlyList<string> HookSuffixes =
        ["hook_sae_input", "hook_sae_acts_pre", "hook_sae_acts_post", "hook_sae_recons", "hook_sae_error",
            "hook_sae_output"];

    public ScalarType Dtype => W_enc.dtype;
    public Device Device => W_enc.device;

    /// <summary>The tensors each architecture's state dict holds (SAELens's <c>state_dict()</c> names).</summary>
    public static IReadOnlyList<string> StateDictNames(string architecture) => architecture switch
    {
        "gated" => ["W_enc", "W_dec", "b_dec", "b_gate", "b_mag", "r_mag"],
        "jumprelu" => ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"],
        _ => ["W_enc", "b_enc", "W_dec", "b_dec"],
    };

    /// <summary>
    /// An SAE from its config and state dict (taken over: the SAE owns and casts the tensors). The
    /// names and shapes must be exactly the architecture's, as SAELens's strict load_state_dict requires.
    /// </summary>
    public SparseAutoencoder(SaeConfig config, IDictionary<string, Tensor> stateDict, string source)
    {
        Config = config;
        Source = source;
        var names = StateDictNames(config.Architecture);
        var missing = names.Where(n => !stateDict.ContainsKey(n)).ToList();
        var extra = stateDict.Keys.Where(n => !names.Contains(n)).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new SaeException($"{source}: a {config.Architecture} SAE has tensors {string.Join(", ", names)}"
                + (missing.Count > 0 ? $"; missing {string.Join(", ", missing)}" : "")
                + (extra.Count > 0 ? $"; unexpected {string.Join(", ", extra)}" : ""));
        long dIn = config.DIn, dSae = config.DSae;
        var shapes = new Dictionary<string, long[]>
        {
            ["W_enc"] = [dIn, dSae], ["W_dec"] = [dSae, dIn], ["b_dec"] = [dIn], ["b_enc"] = [dSae],
            ["threshold"] = [dSae], ["b_gate"] = [dSae], ["b_mag"] = [dSae], ["r_mag"] = [dSae],
        };
        foreach (var n in names)
            if (!stateDict[n].shape.SequenceEqual(shapes[n]))
                throw new SaeException($"{source}: tensor '{n}' has shape [{string.Join(", ", stateDict[n].shape)}] " +
                    $"but d_in {dIn}, d_sae {dSae} need [{string.Join(", ", shapes[n])}]");
        var dtype = HookedTransformer.DtypeOf(config.Dtype);
        Tensor Take(string n)
        {
            var t = stateDict[n];
            if (t.dtype == dtype) return t.DetachFromDisposeScope();
            using (t) return t.to(dtype).DetachFromDisposeScope();
        }
        W_enc = Take("W_enc"); W_dec = Take("W_dec"); b_dec = Take("b_dec");
        if (config.Architecture == "gated") { b_gate = Take("b_gate"); b_mag = Take("b_mag"); r_mag = Take("r_mag"); }
        else b_enc = Take("b_enc");
        if (config.Architecture == "jumprelu") threshold = Take("threshold");
        HookSaeInput = new HookPoint($"{HookName}.hook_sae_input");
        HookSaeActsPre = new HookPoint($"{HookName}.hook_sae_acts_pre");
        HookSaeActsPost = new HookPoint($"{HookName}.hook_sae_acts_post");
        HookSaeRecons = new HookPoint($"{HookName}.hook_sae_recons");
        HookSaeError = new HookPoint($"{HookName}.hook_sae_error");
        HookSaeOutput = new HookPoint($"{HookName}.hook_sae_output");
    }

    /// <summary>Loads a SAELens folder (cfg.json + sae_weights.safetensors) or a Gemma Scope params.npz; see
    /// <see cref="SaeLoader"/>.</summary>
    public static SparseAutoencoder Load(string path, string? hook = null, Device? device = null) =>
        SaeLoader.Load(path, hook, device);

    /// <summary>Feature activations (<c>hook_sae_acts_post</c>) [..., d_sae] of activations in the hook point's
    /// shape.</summary>
    public Tensor Encode(Tensor x)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return EncodeWith(x, hooked: true).Features.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The reconstruction of feature activations, in the hook point's shape. Normalising SAEs
    /// (constant_norm_rescale, layer_norm) undo the statistics of the input they encoded, and hook_z
    /// SAEs reshape to its heads: pass that <paramref name="input"/>; without it a hook_z SAE returns
    /// the flat [..., n_heads·d_head] reconstruction.
    /// </summary>
    public Tensor Decode(Tensor features, Tensor? input = null)
    {
        if (input is null && ActivationNormalization.NeedsInput(Config.NormalizeActivations))
            throw new SaeException($"{Source}: decoding with normalize_activations '{Config.NormalizeActivations}' " +
                $"needs the encoded input's statistics: pass the input (Decode(features, input)) or use Forward");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pass = input is null ? new Pass(null, ActivationNormalization.Identity) : EncodeWith(input, hooked: false);
        return DecodeWith(features, pass, hooked: true).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SAELens's <c>SAE.forward</c>: decode(encode(x)), plus, with the error term, x minus the
    /// reconstruction computed with the SAE's hooks disabled (<c>hook_sae_error</c>), through <c>hook_sae_output</c>.
    /// </summary>
    public Tensor Forward(Tensor x, bool useErrorTerm = false)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pass = EncodeWith(x, hooked: true);
        var output = DecodeWith(pass.Features, pass, hooked: true);
        if (useErrorTerm)
        {
            Tensor clean = output;
            if (HookPoints.Any(h => h.HasHooks))
            {
                var cleanPass = EncodeWith(x, hooked: false);
                clean = DecodeWith(cleanPass.Features, cleanPass, hooked: false);
            }
            output = output + HookSaeError.Run(x - clean);
        }
        return HookSaeOutput.Run(output).MoveToOuterDisposeScope();
    }

    /// <summary>One encoding's results that decoding needs: the features, the normalisation to undo, the head
    /// size.</summary>
    sealed record Pass(Tensor? FeaturesOrNull, ActivationNormalization Normalization, long? DHead = null)
    {
        public Tensor Features => FeaturesOrNull!;
    }

    Pass EncodeWith(Tensor x, bool hooked)
    {
        Tensor Hook(HookPoint h, Tensor t) => hooked ? h.Run(t) : t;
        if (!Config.HookZ && x.shape[^1] != Config.DIn)
            throw new SaeException($"{Source}: the activation at {HookName} has shape [{string.Join(", ", x.shape)}] " +
                $"but the SAE's d_in is {Config.DIn}");
        var sae = x.dtype == Dtype ? x : x.to(Dtype);
        long? dHead = null;
        if (Config.HookZ)
        {
            if (x.dim() < 2 || x.shape[^2] * x.shape[^1] != Config.DIn)
                throw new SaeException($"{Source}: a hook_z SAE with d_in {Config.DIn} got an activation of shape " +
                    $"[{string.Join(", ", x.shape)}] at {HookName} (expected [..., n_heads, d_head] with " +
                    $"n_heads·d_head = d_in)");
            dHead = x.shape[^1];
            sae = sae.flatten(-2, -1);
        }
        sae = Hook(HookSaeInput, sae);
        var (normalized, undo) = ActivationNormalization.In(Config.NormalizeActivations, sae, Config.DIn);
        var saeIn = Config.ApplyBDecToInput ? normalized - b_dec : normalized;
        Tensor features = Config.Architecture switch
        {
            "standard" => Hook(HookSaeActsPost, nn.functional.relu(Hook(HookSaeActsPre, saeIn.matmul(W_enc) + b_enc!))),
            "jumprelu" => JumpRelu(Hook(HookSaeActsPre, saeIn.matmul(W_enc) + b_enc!), Hook),
            "topk" => TopK(Hook(HookSaeActsPre, saeIn.matmul(W_enc) + b_enc!), Hook),
            "gated" => Gated(saeIn, Hook),
            _ => throw new SaeException($"{Source}: architecture '{Config.Architecture}' is not supported"),
        };
        return new Pass(features, undo, dHead);
    }

    Tensor JumpRelu(Tensor pre, Func<HookPoint, Tensor, Tensor> hook) =>
        hook(HookSaeActsPost, nn.functional.relu(pre) * pre.gt(threshold!).to(pre.dtype));

    /// <summary>topk_sae.py 60-115, 238-250: rank (optionally decoder-norm-scaled) pre-activations, ReLU the k picked
    /// values only.</summary>
    Tensor TopK(Tensor pre, Func<HookPoint, Tensor, Tensor> hook)
    {
        if (Config.RescaleActsByDecoderNorm) pre = pre * W_dec.norm(-1);
        var (values, indices) = pre.topk(Config.K, -1, largest: true, sorted: false);
        var dense = zeros_like(pre).scatter_(-1, indices, nn.functional.relu(values));
        return hook(HookSaeActsPost, dense);
    }

    /// <summary>gated_sae.py 52-73: a gate from W_enc + b_gate, magnitudes from W_enc·exp(r_mag) + b_mag.</summary>
    Tensor Gated(Tensor saeIn, Func<HookPoint, Tensor, Tensor> hook)
    {
        var active = (saeIn.matmul(W_enc) + b_gate!).gt(0).to(Dtype);
        var magnitudePre = hook(HookSaeActsPre, saeIn.matmul(W_enc * r_mag!.exp()) + b_mag!);
        return hook(HookSaeActsPost, active * nn.functional.relu(magnitudePre));
    }

    Tensor DecodeWith(Tensor features, Pass pass, bool hooked)
    {
        if (features.shape[^1] != Config.DSae)
            throw new SaeException(
                $"{Source}: features have {features.shape[^1]} latents but the SAE has d_sae {Config.DSae}");
        if (Config.Architecture == "topk" && Config.RescaleActsByDecoderNorm) features = features / W_dec.norm(-1);
        var recons = features.matmul(W_dec) + b_dec;
        if (hooked) recons = HookSaeRecons.Run(recons);
        var output = pass.Normalization.Out(recons);
        if (Config.HookZ && pass.DHead is long dHead)
            output = output.reshape([.. output.shape[..^1], Config.DIn / dHead, dHead]);
        return output;
    }

    /// <summary>Moves the weights to a device, in place; returns this.</summary>
    public SparseAutoencoder To(Device device)
    {
        Tensor Move(Tensor t)
        {
            if (t.device.type == device.type && t.device.index == device.index) return t;
            var m = t.to(device).DetachFromDisposeScope();
            t.Dispose();
            return m;
        }
        W_enc = Move(W_enc); W_dec = Move(W_dec); b_dec = Move(b_dec);
        if (b_enc is not null) b_enc = Move(b_enc);
        if (threshold is not null) threshold = Move(threshold);
        if (b_gate is not null) b_gate = Move(b_gate);
        if (b_mag is not null) b_mag = Move(b_mag);
        if (r_mag is not null) r_mag = Move(r_mag);
        return this;
    }

    /// <summary>The weights under SAELens's state_dict names (the SAE's own tensors).</summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> StateDict() =>
        StateDictNames(Config.Architecture).Select(n => new KeyValuePair<string, Tensor>(n, n switch
        {
            "W_enc" => W_enc,
            "W_dec" => W_dec,
            "b_dec" => b_dec,
            "b_enc" => b_enc!,
            "threshold" => threshold!,
            "b_gate" => b_gate!,
            "b_mag" => b_mag!,
            _ => r_mag!,
        })).ToList();

    public void Dispose()
    {
        foreach (var (_, t) in StateDict()) t.Dispose();
    }

    public override string ToString() =>
        $"SparseAutoencoder({Config.Architecture}, d_in {Config.DIn}, d_sae {Config.DSae}, at {HookName})";
}
