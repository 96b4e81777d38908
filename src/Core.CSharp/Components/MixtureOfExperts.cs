using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Components;

#pragma warning disable IDE1006 // TransformerLens's module names

/// <summary>
/// TransformerLens's mixture-of-experts MLP (components/mlps/moe.py, Mixtral). Tokens are flattened to
/// [batch·pos, d_model]; the router W_gate gives one logit per expert; hook_expert_weights is the
/// softmax over ALL experts [batch·pos, num_experts] (in float32); the experts_per_token largest are
/// chosen (hook_expert_indices [batch·pos, k], int64, in descending weight order) and, only when
/// norm_topk_prob, renormalised to sum to 1. Each expert runs on the tokens routed to it, in the order
/// torch.where gives over its one-hot mask [k, batch·pos] (slot 0's tokens ascending, then slot 1's),
/// so its hooks have a variable first dimension; its output, times the routing weight, is added back
/// at those tokens. Router and expert weights are nn.Linear weights [out, in] under
/// <c>W_gate.weight</c>, <c>experts.{e}.W_in.weight</c> etc., as TransformerLens stores them.
/// </summary>
public sealed class MixtureOfExperts : nn.Module
{
    public Linear W_gate;
    public ModuleList<MoeExpert> experts;
    readonly int _topK;
    readonly bool _normalizeTopK;
    public readonly HookPoint HookExpertWeights, HookExpertIndices;

    public MixtureOfExperts(HookPointFactory hooks, HookedTransformerConfig cfg, ScalarType dtype) : base(hooks.Path)
    {
        int n = cfg.NumExperts ?? throw new ArgumentException("a mixture of experts needs num_experts");
        _topK = cfg.ExpertsPerToken ?? throw new ArgumentException("a mixture of experts needs experts_per_token");
        _normalizeTopK = cfg.NormTopkProb;
        W_gate = nn.Linear(cfg.DModel, n, hasBias: false, dtype: dtype);
        HookExpertWeights = hooks.Create("hook_expert_weights");
        HookExpertIndices = hooks.Create("hook_expert_indices");
        experts = new ModuleList<MoeExpert>(Enumerable.Range(0, n)
            .Select(e => new MoeExpert(hooks.Under($"experts.{e}"), cfg, dtype)).ToArray());
        RegisterComponents();
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], pos = x.shape[1], d = x.shape[2];
        var flat = x.reshape(-1, d);
        var gateLogits = W_gate.forward(flat);
        var probabilities = HookExpertWeights.Run(gateLogits.softmax(1, ScalarType.Float32));
        var (top, indices) = probabilities.topk(_topK, dim: -1);
        if (_normalizeTopK) top = top / top.sum(-1, keepdim: true);
        indices = HookExpertIndices.Run(indices);
        var weights = top.to(x.dtype).flatten();   // [tokens·k], slot-minor
        var results = zeros(flat.shape[0], d, dtype: x.dtype, device: x.device);
        var routed = nn.functional.one_hot(indices, experts.Count).permute(2, 1, 0); // [expert, slot, token]
        for (int e = 0; e < experts.Count; e++)
        {
            var where = routed[e].nonzero();                 // row-major: by slot, then token
            var slot = where[.., 0];
            var token = where[.., 1];
            var output = experts[e].forward(flat.index_select(0, token)) * weights.index_select(0, token * _topK + slot)
                .unsqueeze(1);
            results.index_add_(0, token, output, 1);
        }
        return results.view(batch, pos, d).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One expert (TransformerLens's MoEGatedMLP): hook_gate = x W_gateᵀ, hook_pre = x W_inᵀ,
/// hook_post = act(gate) · pre, out = post W_outᵀ; no biases. x is [tokens routed here, d_model].
/// </summary>
public sealed class MoeExpert : nn.Module
{
    public Linear W_in, W_gate, W_out;
    readonly Func<Tensor, Tensor> _act;
    public readonly HookPoint HookGate, HookPre, HookPost;

    public MoeExpert(HookPointFactory hooks, HookedTransformerConfig cfg, ScalarType dtype) : base(hooks.Path)
    {
        int dMlp = cfg.DMlp ?? throw new ArgumentException("an expert needs d_mlp");
        W_in = nn.Linear(cfg.DModel, dMlp, hasBias: false, dtype: dtype);
        W_out = nn.Linear(dMlp, cfg.DModel, hasBias: false, dtype: dtype);
        W_gate = nn.Linear(cfg.DModel, dMlp, hasBias: false, dtype: dtype);
        _act = Activations.Get(cfg.Activation);
        HookGate = hooks.Create("hook_gate");
        HookPre = hooks.Create("hook_pre");
        HookPost = hooks.Create("hook_post");
        RegisterComponents();
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var gate = HookGate.Run(W_gate.forward(x));
        var pre = HookPre.Run(W_in.forward(x));
        var post = HookPost.Run(_act(gate) * pre);
        return W_out.forward(post).MoveToOuterDisposeScope();
    }
}
