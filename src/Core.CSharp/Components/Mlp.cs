using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

#pragma warning disable IDE1006 // TransformerLens's parameter names

/// <summary>
/// TransformerLens's MLP and gated MLP. Plain: post = act(x W_in + b_in) (hook_pre, hook_post).
/// Gated (Llama): pre = x W_gate (hook_pre), pre_linear = x W_in (hook_pre_linear),
/// post = act(pre) * pre_linear + b_in (hook_post). Both end with post W_out + b_out.
/// SoLU-LN adds hook_mid and a LayerNorm (ln) after the activation.
/// </summary>
public sealed class Mlp : nn.Module
{
    public Parameter W_in;
    public Parameter b_in;
    public Parameter W_out;
    public Parameter b_out;
    public Parameter? W_gate;
    public Normalization? ln;
    readonly Func<Tensor, Tensor> _act;
    public readonly HookPoint HookPre, HookPreLinear, HookMid, HookPost;
    public bool Gated => W_gate is not null;

    public Mlp(HookPointFactory hooks, HookedTransformerConfig cfg, ScalarType dtype) : base(hooks.Path)
    {
        int dMlp = cfg.DMlp ?? throw new ArgumentException("an MLP needs d_mlp");
        W_in = new Parameter(empty(cfg.DModel, dMlp, dtype: dtype));
        b_in = new Parameter(zeros(dMlp, dtype: dtype));
        W_out = new Parameter(empty(dMlp, cfg.DModel, dtype: dtype));
        b_out = new Parameter(zeros(cfg.DModel, dtype: dtype));
        if (cfg.GatedMlp) W_gate = new Parameter(empty(cfg.DModel, dMlp, dtype: dtype));
        _act = Activations.Get(cfg.Activation);
        // In the order the forward pass reaches them.
        HookPre = hooks.Create("hook_pre");
        HookPreLinear = hooks.Create("hook_pre_linear", listed: cfg.GatedMlp);
        bool soluLn = cfg.Activation == ActivationFunction.SoluLn;
        HookMid = hooks.Create("hook_mid", listed: soluLn);
        if (soluLn) ln = new Normalization(hooks.Under("ln"), NormalizationKind.LN, dMlp, cfg.Eps, dtype);
        HookPost = hooks.Create("hook_post");
        RegisterComponents();
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor post;
        if (W_gate is null)
        {
            var pre = HookPre.Run(Linear(x, W_in, b_in));
            post = HookPost.Run(AfterActivation(pre));
        }
        else
        {
            var pre = HookPre.Run(Linear(x, W_gate, null));
            var preLinear = HookPreLinear.Run(Linear(x, W_in, null));
            post = HookPost.Run(AfterActivation(pre) * preLinear + b_in);
        }
        return Linear(post, W_out, b_out).MoveToOuterDisposeScope();
    }

    Tensor AfterActivation(Tensor pre) => ln is null ? _act(pre) : ln.forward(HookMid.Run(_act(pre)));

    /// <summary>x @ W (+ b) over any leading dimensions, as one fused matrix multiply.</summary>
    internal static Tensor Linear(Tensor x, Tensor w, Tensor? b)
    {
        var flat = x.reshape(-1, x.shape[^1]);
        var y = b is null ? flat.mm(w) : addmm(b, flat, w, 1, 1);
        return y.view([.. x.shape[..^1], w.shape[1]]);
    }
}
