using Lens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Demo;

/// <summary>
/// Trains <c>demo-attn-only-2l</c> (<c>lens train-demo</c>). The curriculum only ever shows BOS and the ids
/// [low, high), so the model is trained over that sub-vocabulary (high − low ids + BOS): its embedding and
/// unembedding rows are the only ones the loss can reach, and a 50257-row embedding would make every AdamW
/// step ~30× dearer. Afterwards the trained rows are written into a GPT-2-vocabulary model whose other rows
/// keep their seeded initial values; on curriculum tokens the two models compute the same thing.
/// One torch thread and fixed seeds make a run deterministic on a given CPU.
/// </summary>
public static class DemoModelTraining
{
    public static HookedTransformerConfig Config(DemoModelRecipe recipe, int dVocab) => new()
    {
        NLayers = 2, DModel = recipe.DModel, NHeads = recipe.NHeads, DHead = recipe.DHead, NCtx = recipe.NCtx,
        DVocab = dVocab,
        AttnOnly = true, NormalizationType = "LN", PositionalEmbeddingType = recipe.PositionalEmbeddingType,
        TokenizerName = dVocab == DemoModelRecipe.Gpt2Vocab ? "gpt2" : null, Seed = (int)recipe.Seed,
        ModelName = EmbeddedModels.DemoName,
        RandomTokenRange = dVocab == DemoModelRecipe.Gpt2Vocab ? [recipe.TokenLow, recipe.TokenHigh] : null,
    };

    /// <summary>
    /// A batch of the curriculum in sub-vocabulary ids: BOS (= high − low), m random ids, n random ids, the same
    /// n ids again; n uniform in [MinLength, MaxLength), then m uniform in [0, n_ctx − 1 − 2n] (one n and m per
    /// batch), and the m + n ids of a row all different (the first m + n of a random permutation).
    /// The prefix puts the first copy anywhere in the context, so the previous-token head the induction head
    /// reads is needed, and trained, at every position rather than only in the first half. Distinct ids make
    /// one token enough to find where the copy continues: with repeats in the context, matching the two
    /// previous tokens pays, and the previous-token head learns to blur over two positions.
    /// </summary>
    public static Tensor Batch(DemoModelRecipe recipe, int batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        long ids = recipe.TokenHigh - recipe.TokenLow;
        long n = randint(recipe.MinLength, recipe.MaxLength, [1], generator: generator).item<long>();
        long room = recipe.NCtx - 1 - 2 * n;
        long m = randint(0, room + 1, [1], generator: generator).item<long>();
        var permutation = rand([batch, ids], generator: generator).argsort(-1);
        var prefix = permutation.narrow(1, 0, m);
        var body = permutation.narrow(1, m, n);
        var bos = full([batch, 1L], ids, ScalarType.Int64);
        return cat([bos, prefix, body, body], 1).MoveToOuterDisposeScope();
    }

    /// <summary>Trains the recipe and returns the GPT-2-vocabulary model. <paramref name="evaluate"/> is called every
    /// <paramref name="evalEvery"/> steps with the sub-vocabulary model.</summary>
    public static HookedTransformer Train(DemoModelRecipe recipe, Action<HookedTransformer, int>? evaluate = null,
        int evalEvery = 500, bool progress = true)
    {
        recipe.Validate();
        int threads = get_num_threads();
        set_num_threads(1);
        try
        {
            manual_seed(recipe.Seed);
            long ids = recipe.TokenHigh - recipe.TokenLow;
            using var compact = new HookedTransformer(Config(recipe, (int)ids + 1));
            // W_U starts as W_Eᵀ, so that copying a token is easy to express from the first step.
            using (no_grad()) compact.unembed.W_U.copy_(compact.embed.W_E.t());
            var options = new TrainingOptions
            {
                Steps = recipe.Steps, BatchSize = recipe.BatchSize, Lr = recipe.Lr, WarmupSteps = recipe.WarmupSteps,
                WeightDecay = recipe.WeightDecay, Seed = recipe.Seed, Progress = progress, EvalEvery = evalEvery,
                StopWhen = evaluate is null ? null : (m, step) => { evaluate(m, step); return false; },
            };
            Trainer.Train(compact, new GeneratedBatches((b, g) => Batch(recipe, b, g)), options);
            return Expand(recipe, compact);
        }
        finally { set_num_threads(threads); }
    }

    /// <summary>Sub-vocabulary id i is GPT-2 id low + i, and the last one is BOS (50256).</summary>
    public static Tensor VocabularyMap(DemoModelRecipe recipe)
    {
        using var scope = NewDisposeScope();
        return cat([arange(recipe.TokenLow, recipe.TokenHigh, dtype: ScalarType.Int64),
            tensor(new[] { DemoModelRecipe.Bos })]).MoveToOuterDisposeScope();
    }

    static HookedTransformer Expand(DemoModelRecipe recipe, HookedTransformer compact)
    {
        var model = new HookedTransformer(Config(recipe, DemoModelRecipe.Gpt2Vocab));
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var map = VocabularyMap(recipe);
        var trained = compact.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (name, target) in model.StateDict())
        {
            var source = trained[name];
            if (name == "embed.W_E") target.index_copy_(0, map, source);
            else if (name == "unembed.W_U") target.index_copy_(1, map, source);
            else if (name == "unembed.b_U") target.index_copy_(0, map, source);
            else target.copy_(source);
        }
        return model;
    }

    /// <summary>Writes the model's config and its weights as float16 (Lens converts to the config's float32 while
    /// loading), which keeps the 50257-row matrices within the 16 MB budget.</summary>
    public static void Save(HookedTransformer model, string dir)
    {
        model.Save(dir);
        using var scope = NewDisposeScope();
        var half = model.StateDict()
            .Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.to_type(ScalarType.Float16))).ToArray();
        IO.SafetensorsFile.Save(Path.Combine(dir, HookedTransformer.WeightsFile), half,
            new Dictionary<string, string> { ["format"] = "pt", ["producer"] = "lens train-demo" });
    }
}
