using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Analysis;

/// <summary>
/// Integrated gradients over one hook point: the activation is replaced by points on the straight path
/// from a baseline b to the input's own activation x, and
/// attribution = (x − b) · mean over the path of ∂metric/∂activation (a midpoint Riemann sum of
/// <c>steps</c> points, one forward and backward each). Completeness: the attributions sum to
/// metric(x) − metric(b) up to the sum's error, which shrinks as 1/steps²; <see cref="CompletenessError"/>
/// says how far off this run is. Owns <see cref="Attributions"/>.
/// </summary>
public sealed class IntegratedGradients : IDisposable
{
    IntegratedGradients(Tensor attributions, double atInput, double atBaseline, int steps)
    {
        Attributions = attributions;
        MetricAtInput = atInput;
        MetricAtBaseline = atBaseline;
        Steps = steps;
        using var sum = attributions.sum();
        Sum = sum.item<double>();
    }

    /// <summary>
    /// Integrated gradients of <paramref name="metric"/> (logits → scalar tensor) over the hook point
    /// <paramref name="hookName"/> on <paramref name="tokens"/>, from <paramref name="baseline"/> (the
    /// activation's shape; zeros when null, e.g. the activation of a corrupted input otherwise).
    /// </summary>
    public static IntegratedGradients Run(HookedTransformer model, Tensor tokens, string hookName,
        Func<Tensor, Tensor> metric, Tensor? baseline = null, int steps = 50)
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps),
                $"integrated gradients needs at least one step (got {steps})");
        var hook = model.Hook(hookName);
        using var scope = NewDisposeScope();
        Tensor input;
        using (var run = model.RunWithCache(tokens, name => name == hook.Name))
        {
            if (!run.Cache.TryGetValue(hook.Name, out var x))
                throw new ArgumentException($"{hook.Name} does not fire on this model (check its config), so it has " +
                    $"no activation to attribute over");
            input = x.to(ScalarType.Float64).clone();
        }
        var from = baseline is null ? zeros_like(input) : baseline.to(ScalarType.Float64, input.device);
        if (!from.shape.SequenceEqual(input.shape))
            throw new ArgumentException($"the baseline [{string.Join(", ", from.shape)}] and {hook.Name} " +
                $"[{string.Join(", ", input.shape)}] differ in shape");
        var delta = input - from;
        var gradientSum = zeros_like(input);
        for (int k = 0; k < steps; k++)
        {
            double alpha = (k + 0.5) / steps;
            using var step = NewDisposeScope();
            var point = from + delta * alpha;
            HookFunction replace = (a, _) => point.to(a.dtype).requires_grad_(true);
            using (model.Hooks((hook.Name, replace)))
            using (var run = model.Backward(tokens, metric, name => name == hook.Name))
                gradientSum.add_(run.Cache[hook.Name + "_grad"].to(ScalarType.Float64));
        }
        var attributions = (delta * gradientSum / steps).MoveToOuterDisposeScope();
        double atInput = MetricWith(model, tokens, metric, hook.Name, null);
        double atBaseline = MetricWith(model, tokens, metric, hook.Name, from);
        return new IntegratedGradients(attributions, atInput, atBaseline, steps);
    }

    static double MetricWith(HookedTransformer model, Tensor tokens, Func<Tensor, Tensor> metric, string hookName,
        Tensor? replacement)
    {
        HookFunction replace = (a, _) => replacement!.to(a.dtype);
        using var hooks = replacement is null ? null : model.Hooks((hookName, replace));
        using var logits = model.Forward(tokens);
        return AttributionPatching.MetricValue(metric, logits);
    }

    /// <summary>The attribution of every element of the activation (float64, the activation's shape).</summary>
    public Tensor Attributions { get; }

    public double MetricAtInput { get; }
    public double MetricAtBaseline { get; }
    public int Steps { get; }

    /// <summary>The sum of the attributions.</summary>
    public double Sum { get; }

    /// <summary>|Σ attributions − (metric(input) − metric(baseline))|: the Riemann sum's error.</summary>
    public double CompletenessError => Math.Abs(Sum - (MetricAtInput - MetricAtBaseline));

    /// <summary>Throws when the attributions miss the metric difference by more than <paramref name="tolerance"/> (then
    /// use more steps).</summary>
    public void CheckCompleteness(double tolerance)
    {
        if (CompletenessError > tolerance)
            throw new InvalidOperationException($"integrated gradients with {Steps} steps: the attributions sum " +
                $"to {Sum:G6} but the metric moves by {MetricAtInput - MetricAtBaseline:G6} " +
                $"(error {CompletenessError:G3} > {tolerance:G3}); use more steps");
    }

    public void Dispose() => Attributions.Dispose();
}
