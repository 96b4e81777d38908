using Lens.Sae.Training;

namespace Lens.Demo;

/// <summary>
/// How the shipped demo SAE (models/demo-attn-only-2l-sae) was trained: a TopK SAE (k 8, 256 latents) at
/// <c>blocks.0.hook_resid_post</c> of demo-attn-only-2l, on BOS + 50 random ids twice with BOS positions left
/// out, 500 steps of 4096 activations, lr 1e-3, seed 42, one torch thread. <see cref="Command"/> is the
/// same run through <c>lens sae train</c>.
/// </summary>
public static class DemoSaeRecipe
{
    public const string Folder = "models/demo-attn-only-2l-sae";
    public const string Hook = "blocks.0.hook_resid_post";
    public const int Steps = 500, BatchTokens = 4096, RepeatedBlock = 50;

    public const string Command =
        "lens sae train demo-attn-only-2l --hook blocks.0.hook_resid_post --repeat-random 50 --exclude-bos "
        + "--architecture topk --k 8 --d-sae 256 "
        + "--training-tokens 2048000 --lr 1e-3 --seed 42 --threads 1 --out models/demo-attn-only-2l-sae";

    /// <summary>The recipe's request, optionally cut to its first <paramref name="steps"/> steps (the learning rate is
    /// constant, so they are the full run's first steps).</summary>
    public static SaeTrainingRequest Request(int? steps = null, bool progress = false) => new(Hook,
        new SaeTrainingOptions
        {
            Architecture = "topk", DSae = 256, K = 8, TrainingTokens = (long)(steps ?? Steps) * BatchTokens,
            TrainBatchSizeTokens = BatchTokens, Lr = 1e-3, Seed = 42, Progress = progress,
        },
        SaeTrainingInputs.Repeated(RepeatedBlock), [DemoModelRecipe.Bos]);
}
