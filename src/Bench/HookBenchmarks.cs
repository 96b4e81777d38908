using static TorchSharp.torch;

namespace Lens.Bench;

/// <summary>The cost of hooks: a no-op callback at every hook point, and the cost of one hook call.</summary>
public static class HookBenchmarks
{
    /// <summary>Hook points whose presence of a hook makes the forward compute them explicitly (no fused
    /// kernel).</summary>
    public static bool SelectsExplicitPath(string name) =>
        name.EndsWith(".hook_attn_scores", StringComparison.Ordinal)
            || name.EndsWith(".hook_pattern", StringComparison.Ordinal)
            || name.EndsWith(".hook_scale", StringComparison.Ordinal)
            || name.EndsWith(".hook_normalized", StringComparison.Ordinal);

    static readonly HookFunction NoOp = (_, _) => null;

    public static IEnumerable<BenchRow> Run(BenchContext ctx)
    {
        var model = ctx.Model;
        var (batch, pos) = ctx.Options.Shapes[0];
        using var tokens = BenchModels.Tokens(model.Config, batch, pos);
        ctx.Options.Progress($"no-op hooks at every point, {batch}x{pos}");
        int points = model.HookDict.Count;
        Samples m, b;
        double ratio;
        using (var hooks = new HookedModel(model, _ => true))
        {
            var once = Timing.Milliseconds(() => { using var l = model.Forward(tokens); });
            (m, b, ratio) = Timing.Paired(
                () => { using var l = model.Forward(tokens); },
                () => { using (hooks.Suspended()) { using var l = model.Forward(tokens); } },
                1, ctx.Options.Repetitions(once));
        }
        yield return BenchRow.FromSamples($"forward {batch}x{pos}, no-op hook at all {points} points, vs no hooks", m,
            "ms", b, ratio, Target.Ratio("<=", 1.10),
            "hooks on attn_scores/pattern/ln scale/normalized make attention and LayerNorm run unfused");
        yield return HookCallCost(ctx);
    }

    /// <summary>
    /// ns per hook call: many forwards of a tiny model with no-op hooks at every point, against the
    /// same forwards with hooks only where a hook changes which kernels run, so that both do the
    /// same tensor work and the difference is the calls alone. Timed in the thread's CPU time (tiny
    /// tensors run on the calling thread), which other processes' load does not inflate.
    /// </summary>
    static BenchRow HookCallCost(BenchContext ctx)
    {
        ctx.Options.Progress("hook call cost (tiny model)");
        int threads = get_num_threads();
        set_num_threads(1); // every kernel on this thread, so that its CPU time is the whole cost
        try
        {
            using var tiny = BenchModels.Build(BenchModels.Tiny());
            using var tokens = BenchModels.Tokens(tiny.Config, 1, 8);
            // points a config flag switches off never fire
            var all = tiny.HookDict.Keys.Where(n => tiny.DisablingFlag(n) is null).ToList();
            var explicitOnly = all.Where(SelectsExplicitPath).ToList();
            int extraCalls = all.Count - explicitOnly.Count;
            // enough calls per forward that their cost stands well out of the forward's own
            const int hooksPerPoint = 128;
            using var _ = tiny.Hooks(explicitOnly.Select(n => HookSpec.Named(n, NoOp)));
            using var forced = new HookedModel(tiny, n => !SelectsExplicitPath(n), hooksPerPoint);
            Func<Action, double> clock = ThreadCpuTime.Available ? ThreadCpuTime.Milliseconds : Timing.Milliseconds;
            var perForward = clock(() => { for (int i = 0; i < 20; i++) { using var l = tiny.Forward(tokens); } }) / 20;
            int forwards = Math.Max(20, (int)(100 / Math.Max(perForward, 1e-3)));
            void Loop() { for (int i = 0; i < forwards; i++) { using var l = tiny.Forward(tokens); } }
            void Unhooked() { using (forced.Suspended()) Loop(); }
            var reps = ctx.Options.Quick ? 9 : 21;
            var perCall = new List<double>();
            Loop();
            for (int r = 0; r < reps; r++)
            {
                double with, without;
                if (r % 2 == 0) { without = clock(Unhooked); with = clock(Loop); }
                else { with = clock(Loop); without = clock(Unhooked); }
                perCall.Add((with - without) * 1e6 / ((double)forwards * extraCalls * hooksPerPoint));
            }
            var direct = DirectCallNs();
            return BenchRow.FromSamples($"hook call cost: tiny-model forwards with {hooksPerPoint} no-op hooks at " +
                $"every point", new Samples(perCall), "ns/call", null, null, Target.Value("<=", 100),
                $"{(ThreadCpuTime.Available ? "thread CPU time" : "wall time")}, 1 torch thread, {forwards} forwards "
                + $"x {extraCalls * hooksPerPoint} extra calls per sample; "
                + $"HookPoint.Run alone: {direct:0} ns/call; PyTorch's forward hooks cost ~2000 ns/call");
        }
        finally { set_num_threads(threads); }
    }

    /// <summary>ns for HookPoint.Run with one no-op hook, outside any forward.</summary>
    static double DirectCallNs()
    {
        var hp = new HookPoint("bench.hook_direct");
        using var x = zeros(4);
        using var h = hp.Add(NoOp);
        const int n = 1_000_000;
        for (int i = 0; i < 10_000; i++) hp.Run(x);
        var ms = Timing.Milliseconds(() => { for (int i = 0; i < n; i++) hp.Run(x); });
        return ms * 1e6 / n;
    }

    /// <summary>No-op hooks attached to a model's points (a predicate over names), removable for a while.</summary>
    sealed class HookedModel : IDisposable
    {
        readonly HookedTransformer _model;
        readonly List<string> _names;
        readonly int _perPoint;
        IDisposable? _handle;

        public HookedModel(HookedTransformer model, Func<string, bool> which, int perPoint = 1)
        {
            _model = model;
            _names = model.HookDict.Keys.Where(n => which(n) && model.DisablingFlag(n) is null).ToList();
            _perPoint = perPoint;
            Attach();
        }

        void Attach() =>
            _handle = _model.Hooks(_names.SelectMany(n => Enumerable.Repeat(HookSpec.Named(n, NoOp), _perPoint)));

        public IDisposable Suspended()
        {
            _handle?.Dispose();
            _handle = null;
            return new Resume(this);
        }

        sealed class Resume(HookedModel owner) : IDisposable { public void Dispose() => owner.Attach(); }

        public void Dispose() { _handle?.Dispose(); _handle = null; }
    }
}
