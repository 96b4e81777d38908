using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>
/// Activations at a model's hook point over token batches, as SAELens's ActivationsStore reads them:
/// every position of each sequence (attention heads flattened head-major for hook_z/q/k/v), the
/// positions holding an excluded token id (SAELens's <c>exclude_special_tokens</c>) left out. The
/// forward stops after the hook's layer.
/// </summary>
public sealed class ModelActivations
{
    readonly HookedTransformer _model;
    readonly IBatchSource _tokens;
    readonly int _sequencesPerRun;
    readonly Generator _generator;
    readonly long[] _exclude;
    readonly int? _stopAtLayer;

    public string HookName { get; }
    public int DIn { get; }

    /// <param name="tokens">token batches [batch, pos] (a dataset, or a generated curriculum), drawn with
    /// <paramref name="generator"/></param>
    /// <param name="sequencesPerRun">sequences per model forward</param>
    public ModelActivations(HookedTransformer model, string hookName, IBatchSource tokens, int sequencesPerRun,
        Generator generator, IReadOnlyCollection<long>? excludeTokens = null)
    {
        if (!model.HookDict.ContainsKey(hookName))
        {
            var near = Suggestions.Nearest(hookName, model.HookDict.Keys);
            throw new SaeException($"'{hookName}' is not a hook point of {model.Config.ModelName ?? "the model"}"
                + (near.Count > 0 ? $" (did you mean {string.Join(", ", near)}?)" : ""));
        }
        if (sequencesPerRun <= 0)
            throw new SaeException($"sequences per forward must be positive (got {sequencesPerRun})");
        _model = model; HookName = hookName; _tokens = tokens; _sequencesPerRun = sequencesPerRun; _generator =
            generator;
        _exclude = excludeTokens?.ToArray() ?? [];
        var m = Regex.Match(hookName, @"^blocks\.(\d+)\.");
        _stopAtLayer = m.Success
            ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 1
            : hookName is "hook_embed" or "hook_pos_embed" ? 0 : null;
        using var probe = Next();
        DIn = (int)probe.shape[1];
    }

    /// <summary>The activations of one forward over <c>sequencesPerRun</c> new sequences: [rows, d_in]
    /// float32.</summary>
    public Tensor Next()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var tokens = _tokens.NextBatch(_sequencesPerRun, _generator);
        if (tokens.dim() != 2)
            throw new SaeException($"token batches must be [batch, pos] (got [{string.Join(", ", tokens.shape)}])");
        using var run = _model.RunWithCache(tokens, ReturnType.None, n => n == HookName, stopAtLayer: _stopAtLayer);
        var act = run.Cache[HookName];
        if (act.dim() == 4) act = act.flatten(2, 3);
        var rows = act.flatten(0, 1).to(ScalarType.Float32);
        if (_exclude.Length > 0)
        {
            var keep = ones(tokens.shape, dtype: ScalarType.Bool);
            foreach (var id in _exclude) keep = keep.logical_and(tokens.ne(id));
            rows = rows[keep.flatten()];
        }
        return rows.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>A mixing buffer over these activations, of <paramref name="bufferSize"/> rows, shuffled with
    /// <paramref name="seed"/>.</summary>
    public MixingBuffer Buffered(int bufferSize, long seed) => new(Next, DIn, bufferSize, seed);
}
