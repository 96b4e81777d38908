using System.Text.Json;
using Lens.Visualization;

namespace Lens.Dsl.Runtime;

/// <summary>
/// `logits [top N]`: the table it prints (kind "table": row, rank, token, id, logit, probability) and, for
/// expectations, every logit at each row's last real position (<see cref="Last"/>[row][token], not written
/// to the record), so that `expect logit " Mary"` reads any token, not only the listed ones.
/// </summary>
public sealed record LogitsValue(TableValue Listed, float[][] Last) : ResultValue
{
    public override string Kind => Listed.Kind;

    internal override void WriteFields(Utf8JsonWriter json) => Listed.WriteFields(json);

    protected override string Body() => Listed.ToText();

    internal override void AddFigures(Report report) => (Listed with { Title = Title }).AddFigures(report);

    /// <summary>A token's logit at row <paramref name="row"/>'s last position.</summary>
    public double Logit(int row, long token) => Last[row][token];

    /// <summary>Its probability (softmax over the vocabulary, in float64).</summary>
    public double Probability(int row, long token)
    {
        var logits = Last[row];
        double max = logits.Max(), sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        return Math.Exp(logits[token] - max) / sum;
    }

    /// <summary>Its rank (1: the largest logit; ties share the better rank).</summary>
    public int Rank(int row, long token)
    {
        var logits = Last[row];
        var mine = logits[token];
        return 1 + logits.Count(l => l > mine);
    }
}
