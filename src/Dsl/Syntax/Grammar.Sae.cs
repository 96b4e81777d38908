using Sprache;
using static Lens.Dsl.Tokens;

namespace Lens.Dsl;

/// <summary>Sparse autoencoders: `sae load|metrics`, `features top|logits`, `steer feature`.</summary>
internal sealed partial class Grammar
{
    private static Parser<Statement> Sae() => Dispatch("what to do with the SAE (load or metrics)", "sae action",
        new OrderedDictionary<string, Parser<Statement>>
        {
            ["load"] =
                from path in PathArgument("the SAE's folder (SAELens), params.npz (Gemma Scope) or hub id "
                    + "(owner/repo[/folder])", "the SAE path")
                from options in Options.Parser("sae load option",
                    [Option.Of("at", DottedName("a hook name after 'at', such as blocks.0.hook_resid_post")),
                        Option.Flag("error_term")])
                select (Statement)new SaeLoadStatement(path.Value, options.Get<string>("at"),
                    options.Has("error_term")),
            ["metrics"] = Options.End().Select(_ => (Statement)new SaeMetricsStatement()),
        });

    private static Parser<Statement> Features() => Dispatch("which feature table (top or logits)", "feature table",
        new OrderedDictionary<string, Parser<Statement>>
        {
            ["top"] =
                from count in Count("a count after 'top'", Ranges.Top)
                from options in Options.Parser("features option",
                    [Option.Of("pos", Count("a position after 'pos'", Ranges.Position))])
                select (Statement)new FeaturesTopStatement(count.Value, options.Value<int>("pos")),
            ["logits"] =
                from feature in Count("a feature index after 'logits'", Ranges.FeatureIndex)
                from options in Options.Parser("features option", [Top])
                select (Statement)new FeatureLogitsStatement(feature.Value, options.Value<int>("top")),
        });

    private static Parser<Statement> Steer() =>
        from keyword in Keyword("feature")
        from feature in Count("a feature index after 'feature'", Ranges.FeatureIndex)
        from how in Keyword("by").Or(Keyword("to"))
        from value in Number(how == "by" ? "a number to add after 'by'" : "a value after 'to'")
        from end in Options.End()
        select (Statement)new SteerStatement(feature.Value, value.Value, how == "to");
}
