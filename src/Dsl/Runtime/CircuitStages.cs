using Lens.Analysis;
using static TorchSharp.torch;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `circuit` and `compose`: the weight-based views of the analysis library. For each selected head a
/// circuit's eigenvalue summary (the copying score Re(Σλ)/Σ|λ|, the fraction of eigenvalues with positive
/// real part, the largest |λ|); for the full circuits also the strongest token pairs among the current
/// input's tokens (the vocabulary squared is too large to search) and how often a token's row peaks on
/// itself. `compose`: composition scores from one head set into the Q, K or V input of another.
/// </summary>
internal static class CircuitStages
{
    public static ExperimentState Circuit(CircuitStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var model = state.RequireModel().Model;
        var heads = HeadStages.Resolve(s.Heads, state);
        int top = s.Top ?? 10;
        bool full = s.Kind is CircuitKind.FullOv or CircuitKind.FullQk;
        var ids = full && state.Input is { } input ? input.Ids.SelectMany(r => r).Distinct().Order().ToArray() : null;
        var stats = new List<object[]>();
        var pairs = new List<(HeadRef Head, long Row, long Column, double Value)>();
        foreach (var head in heads)
        {
            using var scope = NewDisposeScope();
            using var matrix = Matrix(model, s.Kind, head);
            var eigenvalues = matrix.Eigenvalues;
            var copying = Composition.CopyingScore(matrix).item<float>();
            var positive = Composition.PositiveEigenvalueFraction(matrix).item<float>();
            var largest = eigenvalues.abs().max().item<float>();
            var row = new List<object>
            {
                head.Label, Numbers.FromFloat(copying), Numbers.FromFloat(positive), Numbers.FromFloat(largest),
                matrix.Mdim
            };
            if (ids is not null)
            {
                var index = tensor(ids, dtype: ScalarType.Int64, device: matrix.A.device);
                // [tokens, tokens]
                var sub = matrix.A.index_select(-2, index).matmul(matrix.B.index_select(-1, index));
                var diagonal = sub.argmax(-1).eq(arange(ids.Length, device: sub.device)).to(ScalarType.Float64).mean()
                    .item<double>();
                row.Add(diagonal);
                var (values, flat) = sub.flatten().topk(Math.Min(top, (int)sub.numel()));
                var v = TensorData.Flat(values);
                var f = TensorData.Longs(flat);
                for (int i = 0; i < v.Length; i++)
                    pairs.Add((head, ids[f[i] / ids.Length], ids[f[i] % ids.Length], v[i]));
            }
            stats.Add([.. row]);
        }
        var name = Keywords.CircuitKinds.Text(s.Kind);
        string[] columns = ["head", "copying score", "positive eigenvalues", "largest |eigenvalue|", "rank"];
        var headTable = new TableValue(ids is null ? columns : [.. columns, "diagonal top-1"], [.. stats])
        {
            Title = $"{Describe(s.Kind)}: eigenvalues per head"
                + (ids is null ? "" : "; diagonal top-1 = share of the input's tokens whose row peaks on themselves"),
        };
        TableValue? pairTable = null;
        if (ids is not null)
        {
            var (rowName, columnName) =
                s.Kind == CircuitKind.FullOv ? ("attended token", "raised logit") : ("query token", "key token");
            pairTable = new TableValue(["head", rowName, columnName, "value"],
                pairs.OrderBy(p => p.Head).ThenByDescending(p => p.Value)
                    .Select(p => new object[]
                    {
                        p.Head.Label, ForwardStages.Token(model, p.Row), ForwardStages.Token(model, p.Column), p.Value
                    }).ToArray())
            {
                Title = $"top {top} token pairs per head among the input's {ids.Length} distinct tokens",
            };
        }
        return state.WithResult(s,
            new CircuitValue(name, headTable, pairTable) { Title = $"circuit {name} {Printer.Print(s.Heads)}" });
    }

    static FactoredMatrix Matrix(HookedTransformer model, CircuitKind kind, HeadRef head)
    {
        switch (kind)
        {
            case CircuitKind.Ov: { using var all = model.OV; return all[head.Layer, head.Head]; }
            case CircuitKind.Qk: { using var all = model.QK; return all[head.Layer, head.Head]; }
            case CircuitKind.FullOv: return Circuits.FullOvCircuit(model, head.Layer, head.Head);
            default: return Circuits.FullQkCircuit(model, head.Layer, head.Head);
        }
    }

    static string Describe(CircuitKind kind) => kind switch
    {
        CircuitKind.Ov => "OV circuit W_V·W_O",
        CircuitKind.Qk => "QK circuit W_Q·W_Kᵀ",
        CircuitKind.FullOv => "full OV circuit W_E·W_V·W_O·W_U",
        _ => "full QK circuit W_E·W_Q·W_Kᵀ·W_Eᵀ",
    };

    public static ExperimentState Compose(ComposeStatement s, ExperimentState state)
    {
        state = state.WithModel();
        var model = state.RequireModel().Model;
        var from = HeadStages.Resolve(s.From, state);
        var to = HeadStages.Resolve(s.To, state);
        var mode = Keywords.CompositionKinds.Text(s.Kind).ToUpperInvariant();
        using var scores = Composition.AllScores(model, mode);
        var flat = TensorData.Flat(scores.Scores);                  // [layer1, head1, layer2, head2], last fastest
        int layers = model.Config.NLayers, heads = model.Config.NHeads;
        double At(HeadRef f, HeadRef t) => flat[((f.Layer * heads + f.Head) * layers + t.Layer) * heads + t.Head];
        var values = from.Select(f => to.Select(t => At(f, t)).ToArray()).ToArray();
        return state.WithResult(s,
            new MatrixValue($"{mode}-composition", values, from.Select(h => h.Label).ToArray(),
            to.Select(h => h.Label).ToArray())
            {
                Title =
                    $"{mode}-composition scores: rows write (earlier heads), columns read through {mode} (0 unless " +
                $"the reader is in a later layer)",
            });
    }
}
