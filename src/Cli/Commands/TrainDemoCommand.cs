using System.CommandLine;
using Lens.Analysis;
using Lens.Demo;
using static TorchSharp.torch;

namespace Lens.Cli.Commands;

/// <summary><c>lens train-demo</c>: trains the embedded demo model from its recipe and measures its five
/// properties.</summary>
public static class TrainDemoCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out")
        {
            Description = "the checkpoint folder to write (config.json + model.safetensors)", Required = true
        };
        // Create() must not touch Lens.Core: its module initializer loads libtorch, which `lens --help` should not wait
        // for.
        var steps = new Option<int?>("--steps")
        {
            Description = "training steps (default: the recipe's, see models/demo-attn-only-2l/README.md)"
        };
        var compare = new Option<string?>("--compare")
        {
            Description =
                "a model name or folder to compare the trained weights with (e.g. demo-attn-only-2l, the embedded one)"
        };
        var cmd = new Command("train-demo", """
            Trains demo-attn-only-2l, Lens's embedded default model, from its recipe (models/demo-attn-only-2l/README.md):
            a two-layer attention-only transformer on BOS + n random ids + the same n ids again. One torch
            thread and fixed seeds: on a given CPU the result is the same to the bit. Prints the head scores
            while training, the sha256 of the trained float32 weights (compare it with another machine's), then
            the five properties of the trained model against their targets, and writes the checkpoint (float16 weights).
            Examples:
              lens train-demo --out models/demo-attn-only-2l
              lens train-demo --out /tmp/demo --compare demo-attn-only-2l
            """)
        { output, steps, compare };
        cmd.SetAction(r => Run(r.GetValue(output)!, r.GetValue(steps), r.GetValue(compare)));
        return cmd;
    }

    static int Run(string output, int? steps, string? compare)
    {
        if (Lens.IO.OutputPaths.FolderProblem(output) is string problem) throw new UsageException($"--out: {problem}");
        var recipe = new DemoModelRecipe();
        if (steps is int s)
            recipe = recipe with { Steps = s >= 0 ? s : throw new UsageException($"--steps must be >= 0 (got {s})") };
        long ids = recipe.TokenHigh - recipe.TokenLow;
        Console.WriteLine($"training {EmbeddedModels.DemoName}: {recipe.Steps} steps, batch {recipe.BatchSize}, " +
            $"lr {recipe.Lr}, {recipe.NHeads} heads × d_head {recipe.DHead}, ids " +
            $"[{recipe.TokenLow}, {recipe.TokenHigh})");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        bool showProgress = !Console.IsErrorRedirected;
        using var model = DemoModelTraining.Train(recipe, (m, step) =>
        {
            using var rep = RepeatedTokens.GenerateInRange(0, ids, 50, 2, 8, 7, bos: ids);
            var p = DemoModelProperties.Measure(m, rep);
            if (showProgress) Console.Error.Write("\r\x1b[K"); // clear the progress line
            Console.WriteLine($"step {step,5} {clock.Elapsed.TotalSeconds,6:F0}s  previous-token " +
                $"L0H{p.PreviousTokenHead} {p.PreviousTokenScore:F2}  induction " +
                $"L1H{p.InductionHead} {p.InductionScore:F2}  loss {p.FirstRepeatLoss:F2} -> {p.SecondRepeatLoss:F2} " +
                $" ablated x{p.AblationFactor:F1}");
        }, progress: showProgress);
        Console.WriteLine($"trained in {clock.Elapsed.TotalSeconds:F0} s");
        Console.WriteLine($"weights sha256 (float32, before saving): {StateDictChecksum.Sha256(model.StateDict())}");
        DemoModelTraining.Save(model, output);
        Console.WriteLine($"wrote {output}");
        // Measured as saved: float16 weights, loaded back as the config's float32.
        using var saved = HookedTransformer.Load(output);
        var properties = DemoModelProperties.Measure(saved);
        Console.WriteLine(Tables.Render(["property", "target", "measured", "met"],
            properties.Checks().Select(c => new[] { c.Property, c.Target, c.Measured, c.Met ? "yes" : "NO" })));
        if (compare is not null) Compare(saved, compare);
        return properties.Checks().All(c => c.Met) ? CliRunner.Ok : CliRunner.Failed;
    }

    static void Compare(HookedTransformer trained, string name)
    {
        using var reference = ModelLoader.Load(name);
        using var scope = NewDisposeScope();
        var theirs = reference.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        var rows = trained.StateDict().Select(kv =>
        {
            if (!theirs.TryGetValue(kv.Key, out var other) || !other.shape.SequenceEqual(kv.Value.shape))
                return (kv.Key, double.NaN);
            return (kv.Key, (kv.Value - other).abs().max().item<float>());
        }).ToList();
        double worst = rows.Max(r => double.IsNaN(r.Item2) ? double.PositiveInfinity : r.Item2);
        Console.WriteLine(worst == 0
            ? $"identical to {name}: all {rows.Count} tensors equal to the bit"
            : $"differs from {name}: largest |difference| {worst:G3} " +
                $"({string.Join(", ", rows.Where(r => !(r.Item2 == 0)).Select(r => $"{r.Key} {r.Item2:G3}"))})");
    }
}
