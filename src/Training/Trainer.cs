using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Lens.Training;

/// <summary>
/// Trains a <see cref="HookedTransformer"/>: AdamW (decay on weight matrices only), learning rate rising
/// linearly over the warm-up, global gradient-norm clipping, optional early stop and periodic checkpoints.
/// </summary>
public static class Trainer
{
    /// <summary>Trains on rows drawn from a dataset of token sequences [n, pos].</summary>
    public static TrainingResult Train(HookedTransformer model, Tensor dataset, TrainingOptions options) =>
        Train(model, new TensorBatches(dataset), options);

    /// <summary>
    /// Trains the parameters that require gradients, or all of them when none do (the analysis default);
    /// the requires_grad flags are restored afterwards.
    /// </summary>
    public static TrainingResult Train(HookedTransformer model, IBatchSource batches, TrainingOptions options)
    {
        options.Validate();
        var all = model.Parameters().Select(p => p.Param).ToList();
        var before = all.Select(p => p.requires_grad).ToList();
        var trained = before.Any(r => r) ? all.Where(p => p.requires_grad).ToList() : all;
        foreach (var p in trained) p.requires_grad = true;
        try { return Run(model, batches, options, trained); }
        finally { for (int i = 0; i < all.Count; i++) all[i].requires_grad = before[i]; }
    }

    /// <summary>
    /// The learning rate of a step (0-based): lr·(step+1)/warmup during the warm-up; then lr, or under a cosine
    /// schedule min_lr + ½(lr − min_lr)(1 + cos(π·t)) with t running from 0 after the warm-up to 1 at the last step.
    /// </summary>
    public static double LearningRate(TrainingOptions options, int step)
    {
        if (options.WarmupSteps > 0 && step < options.WarmupSteps) return options.Lr * (step + 1) / options.WarmupSteps;
        if (options.Schedule == LrSchedule.Constant) return options.Lr;
        int span = Math.Max(options.Steps - 1 - options.WarmupSteps, 1);
        double t = Math.Clamp((double)(step - options.WarmupSteps) / span, 0, 1);
        return options.MinLr + 0.5 * (options.Lr - options.MinLr) * (1 + Math.Cos(Math.PI * t));
    }

    static TrainingResult Run(HookedTransformer model, IBatchSource batches, TrainingOptions options,
        List<Parameter> trained)
    {
        if (options.CheckpointEvery > 0
            && Lens.IO.OutputPaths.FolderProblem(options.CheckpointDir ?? "") is string problem)
            throw new Lens.IO.OutputPathException($"the checkpoint folder: {problem}");
        var loss = options.Loss ?? ((m, tokens) => m.Loss(tokens));
        using var generator = new Generator((ulong)options.Seed);
        var groups = new List<AdamW.ParamGroup>();
        var decayed = trained.Where(p => p.dim() >= 2).ToList();
        var plain = trained.Where(p => p.dim() < 2).ToList();
        if (decayed.Count > 0)
            groups.Add(new AdamW.ParamGroup(decayed,
                new AdamW.Options { LearningRate = options.Lr, weight_decay = options.WeightDecay }));
        if (plain.Count > 0)
            groups.Add(new AdamW.ParamGroup(plain, new AdamW.Options { LearningRate = options.Lr, weight_decay = 0 }));
        using var optimizer = optim.AdamW(groups, lr: options.Lr);

        var losses = new List<float>(options.Steps);
        var checkpoints = new List<string>();
        var progress = options.Progress ? new ProgressBar(options.Steps) : null;
        var clock = Stopwatch.StartNew();
        bool stoppedEarly = false;
        int step = 0;
        while (step < options.Steps)
        {
            double lr = LearningRate(options, step);
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                var tokens = batches.NextBatch(options.BatchSize, generator);
                var value = loss(model, tokens);
                if (!value.requires_grad)
                    throw new InvalidOperationException(
                        "the training loss does not depend on the parameters (no gradient)");
                value.backward();
                if (options.GradClip > 0) nn.utils.clip_grad_norm_(trained, options.GradClip);
                optimizer.step();
                losses.Add(value.item<float>());
            }
            step++;
            if (float.IsNaN(losses[^1]) || float.IsInfinity(losses[^1]))
                throw new InvalidOperationException($"training diverged at step {step}: loss is {losses[^1]} (try a " +
                    $"lower learning rate or gradient clipping)");
            progress?.Report(step, losses[^1]);
            if (options.CheckpointEvery > 0 && step % options.CheckpointEvery == 0)
            {
                var dir = Path.Combine(options.CheckpointDir!, $"step-{step:D6}");
                model.Save(dir);
                checkpoints.Add(dir);
            }
            if (options.StopWhen is not null && step % options.EvalEvery == 0 && step < options.Steps)
            {
                bool stop;
                using (no_grad()) stop = options.StopWhen(model, step);
                if (stop) { stoppedEarly = true; break; }
            }
        }
        progress?.Finish(step, losses.Count > 0 ? losses[^1] : double.NaN);
        return new TrainingResult(step, losses, stoppedEarly, clock.Elapsed, checkpoints);
    }
}
