using Lens.Sae;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// Sparse autoencoders in experiments (the core's Lens.Sae): `sae load` splices an SAE in for the rest of the
/// scope, `features top` and `features logits` read its features, `steer feature` edits one, and `sae metrics`
/// computes SAELens's run_evals metrics. Feature statements use the most recently loaded SAE.
/// </summary>
internal static class SaeStages
{
    public static ExperimentState Load(SaeLoadStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var sae = state.Environment.LoadSae(state.Environment.SaeLocation(s.Path), s.Hook, state.EffectiveDevice);
        if (state.Saes.FirstOrDefault(a => a.Sae.HookName == sae.HookName) is { } other)
            throw new InvalidOperationException(
                $"an SAE is already loaded at {sae.HookName} (`{other.Text}`): one SAE per hook point");
        var cfg = sae.Config;
        object[][] rows =
        [
            ["architecture", cfg.Architecture], ["hook", sae.HookName], ["d_in", cfg.DIn], ["d_sae", cfg.DSae],
            ["error term",
                s.ErrorTerm
                    ? "yes (the model's output is unchanged)"
                    : "no (the hook point's output is the reconstruction)"], ["source", sae.Source],
        ];
        var text = state.Environment.TextOf(s);
        return state.WithResult(s, new TableValue(["", "value"], rows) { Title = $"SAE spliced into {sae.HookName}" })
            with
        { Saes = state.Saes.Add(new ActiveSae(text, sae, s.ErrorTerm)) };
    }

    static ActiveSae Latest(ExperimentState state, string command) =>
        state.Saes.LastOrDefault()
            ?? throw new InvalidOperationException($"`{command}` needs an SAE: add `sae load PATH` before it");

    /// <summary>`sae metrics`: SAELens's run_evals on the current input, for the most recent SAE on the model without
    /// other changes.</summary>
    public static ExperimentState Metrics(SaeMetricsStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var sae = Latest(state, "sae metrics").Sae;
        var model = state.RequireModel().Model;
        var input = state.RequireInput("sae metrics");
        if (input.Mask is not null)
            throw new NotSupportedException("`sae metrics` does not take texts of different token lengths (it would " +
                "count the pads): give texts of equal length");
        using var tokens = input.ToTensor(model.Device);
        var metrics = SaeEvals.Run(model, sae, [tokens]);
        var rows = metrics.Named()
            .Select(m => new object[] { m.Name, m.Value, MetricNotes.GetValueOrDefault(m.Name, "") }).ToArray();
        return state.WithResult(s, new TableValue(["metric", "value", "note"], rows)
        {
            Title = $"SAELens run_evals metrics of the SAE at {sae.HookName} on {Printer.Print(input.Source)} "
                    + $"({metrics.Tokens} tokens; "
                    + "clean, spliced and zero-ablated runs of the model with no other SAE or edit)",
        });
    }

    /// <summary>The metrics whose meaning differs from what their name suggests, as the table labels them.</summary>
    static readonly Dictionary<string, string> MetricNotes = new()
    {
        ["mse"] = "SAELens's: Σ_d (x−x̂)² / tokens in the batch, then the mean",
        ["explained_variance"] = "SAELens's run_evals value (uncentred, as written)",
        ["explained_variance_legacy"] = "mean over tokens of 1 − Σ(x−x̂)² / Σ(x − mean x)²",
        ["explained_variance_centred"] = "the textbook (trainer's) value",
        ["mse_loss"] = "the trainer's: mean over tokens of Σ_d (x−x̂)²",
        ["ce_loss_score"] = "(CE_ablated − CE_sae) / (CE_ablated − CE_clean)",
        ["kl_div_score"] = "(KL_ablated − KL_sae) / KL_ablated",
        ["dead_features"] = "features that never fire on these tokens",
        ["dense_features"] = "features firing on more than 10 % of tokens",
    };

    /// <summary>`features top K [pos P]`: per row and position (or at P), the K most active features of
    /// hook_sae_acts_post.</summary>
    public static ExperimentState Top(FeaturesTopStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var sae = Latest(state, "features top").Sae;
        using var scope = NewDisposeScope();
        using var pass = new StagePass(state, "features top");
        var name = sae.HookName + ".hook_sae_acts_post";
        using var run = pass.Model.RunWithCache(pass.Tokens, ReturnType.None, n => n == name);
        var acts = run.Cache[name];                                                  // [batch, pos, d_sae]
        var positions = s.Position is int p ? new[] { p } : Enumerable.Range(0, pass.Input.Positions).ToArray();
        var rows = new List<object[]>();
        for (int r = 0; r < pass.Input.Batch; r++)
            foreach (var pos in positions)
            {
                var top = SaeFeatures.Top(acts[r, pos], s.Top);
                for (int k = 0; k < top.Count; k++)
                    rows.Add([r, pos, pass.Input.Tokens[r][pos], k + 1, top[k].Feature, top[k].Value]);
            }
        return state.WithResult(s, new TableValue(["row", "pos", "token", "rank", "feature", "activation"], [.. rows])
        {
            Title = $"the {s.Top} most active features (above 0) of the SAE at {sae.HookName} (hook_sae_acts_post)"
                    + (s.Position is int at ? $" at position {at}" : " at each position"),
            MaxTextRows = 40,
        });
    }

    /// <summary>`features logits N [top K]`: the decoder direction's direct effect on the logits, W_dec[N] @
    /// W_U.</summary>
    public static ExperimentState Logits(FeatureLogitsStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var sae = Latest(state, "features logits").Sae;
        var model = state.RequireModel().Model;
        var (promoted, suppressed) = model.TopLogitTokens(sae, s.Feature, s.Top ?? DefaultTop);
        var rows = promoted.Select((t, i) =>
            new object[] { "promoted", i + 1, ForwardStages.Token(model, t.Token), t.Token, t.Weight })
            .Concat(suppressed.Select((t, i) =>
                new object[] { "suppressed", i + 1, ForwardStages.Token(model, t.Token), t.Token, t.Weight }))
                    .ToArray();
        return state.WithResult(s, new TableValue(["direction", "rank", "token", "id", "weight"], rows)
        {
            Title = $"feature {s.Feature} of the SAE at {sae.HookName}: the tokens its decoder direction promotes and "
                    + $"suppresses most "
                    + "(W_dec[f] @ W_U"
                    + (sae.HookName.EndsWith("hook_z", StringComparison.Ordinal) ? " through W_O" : "")
                    + ", no final LayerNorm)",
        });
    }

    /// <summary>How many tokens `features logits` lists each way when no `top` is given.</summary>
    public const int DefaultTop = 10;

    public static ExperimentState Steer(SteerStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var sae = Latest(state, "steer").Sae;
        return state with
        {
            FeatureEdits =
                state.FeatureEdits.Add(new FeatureEdit(state.Environment.TextOf(s), sae, s.Feature, s.Value, s.Set))
        };
    }
}
