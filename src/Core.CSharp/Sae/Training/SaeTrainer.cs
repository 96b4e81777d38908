using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Sae.Training;

/// <summary>
/// SAELens 6.18's <c>SAETrainer.fit</c> (training/sae_trainer.py) for the standard, topk and batchtopk
/// architectures: per step, the next batch of activations, the architecture's training forward
/// (<see cref="TrainableSae"/>), backward, gradient-norm clipping at 1.0, an Adam step (lr, betas; no
/// weight decay) under the learning-rate schedule, and the L1 coefficient's warm-up
/// (<see cref="SaeSchedules"/>). Dead latents are tracked as SAELens tracks them (steps since each last
/// fired; dead after <c>dead_feature_window</c>), feeding the TopK AuxK loss; like SAELens 6 it does
/// not resample them. Firing frequencies restart every <c>feature_sampling_window</c> steps.
/// Checkpoints (evenly spaced, <c>n_checkpoints</c>) and the result are inference SAEs in SAELens's layout.
/// </summary>
public static class SaeTrainer
{
    /// <summary>Trains an SAE for <paramref name="metadata"/>'s hook on activations from
    /// <paramref name="source"/>.</summary>
    public static SaeTrainingResult Train(IActivationSource source, SaeTrainingOptions options, SaeMetadata metadata,
        Action<SaeTrainingStep>? onStep = null)
    {
        options.Validate(source.DIn);
        if (options.NCheckpoints > 0 && IO.OutputPaths.FolderProblem(options.CheckpointPath!) is string problem)
            throw new SaeException($"checkpoint_path: {problem}");
        // Training needs gradients even when the caller runs under no_grad (as lens bench does).
        using var gradients = enable_grad();
        using var generator = new Generator((ulong)options.Seed);
        using var sae = new TrainableSae(options, source.DIn, generator);
        using var optimizer =
            optim.Adam(sae.Parameters, lr: options.Lr, beta1: options.AdamBeta1, beta2: options.AdamBeta2);
        int dSae = options.DSae, steps = options.TotalSteps, batch = options.TrainBatchSizeTokens;
        using var sinceFired = zeros(dSae);
        var actFreq = zeros(dSae);
        long fracSamples = 0, samples = 0;
        var checkpointAt = CheckpointThresholds(options);
        var checkpoints = new List<string>();
        var history = new List<SaeTrainingStep>(steps);
        var progress = options.Progress ? new ProgressBar(steps, "sae") : null;
        var clock = Stopwatch.StartNew();
        try
        {
            for (int step = 0; step < steps; step++)
            {
                if ((step + 1) % options.FeatureSamplingWindow == 0)
                {
                    actFreq.Dispose();
                    actFreq = zeros(dSae);
                    fracSamples = 0;
                }
                double lr = SaeSchedules.LearningRate(options, step),
                    coefficient = SaeSchedules.L1Coefficient(options, step);
                foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                SaeTrainingStep record;
                using (var scope = NewDisposeScope())
                {
                    using var x = source.NextBatch(batch);
                    if (x.dim() != 2 || x.shape[0] != batch || x.shape[1] != source.DIn)
                        throw new SaeException($"the activation source gave a batch of shape " +
                            $"[{string.Join(", ", x.shape)}], expected [{batch}, {source.DIn}]");
                    samples += batch;
                    var dead = sinceFired.gt(options.DeadFeatureWindow);
                    var output = sae.Forward(x, coefficient, dead);
                    using (no_grad())
                    {
                        var firing = output.FeatureActs.ne(0).to(ScalarType.Float32);
                        var fired = firing.sum(0).gt(0);
                        sinceFired.add_(1).masked_fill_(fired, 0);
                        actFreq.add_(firing.sum(0));
                        fracSamples += batch;
                    }
                    output.Loss.backward();
                    nn.utils.clip_grad_norm_(sae.Parameters, 1.0);
                    optimizer.step();
                    optimizer.zero_grad();
                    record = Record(step, samples, lr, coefficient, x, output, sinceFired, options, sae.TopkThreshold);
                }
                history.Add(record);
                if (!double.IsFinite(record.OverallLoss))
                    throw new SaeException($"SAE training diverged at step {step + 1}: overall " +
                        $"loss {record.OverallLoss} (try a lower lr)");
                onStep?.Invoke(record);
                progress?.Report(step + 1, record.OverallLoss);
                if (checkpointAt.Count > 0 && samples > checkpointAt[0])
                {
                    var dir = Path.Combine(options.CheckpointPath!, samples.ToString(CultureInfo.InvariantCulture));
                    using var snapshot = sae.ToInference(metadata.HookName, dir);
                    using var sparsity = LogSparsity(actFreq, fracSamples);
                    SaeCheckpoint.Save(snapshot, dir, metadata, sparsity);
                    checkpoints.Add(dir);
                    checkpointAt.RemoveAt(0);
                }
            }
            progress?.Finish(steps, history.Count > 0 ? history[^1].OverallLoss : double.NaN);
            var final = sae.ToInference(metadata.HookName, "trained SAE");
            return new SaeTrainingResult(final, history, LogSparsity(actFreq, fracSamples),
                sinceFired.gt(options.DeadFeatureWindow).sum().item<long>(), clock.Elapsed, checkpoints, samples);
        }
        finally { actFreq.Dispose(); }
    }

    /// <summary>sae_trainer.py 83-94: range(0, T, ceil(T / (n + 1)))[1:], in samples; a checkpoint is written once the
    /// samples seen exceed the next one.</summary>
    public static List<long> CheckpointThresholds(SaeTrainingOptions o)
    {
        var list = new List<long>();
        if (o.NCheckpoints <= 0) return list;
        long stride = (o.TrainingTokens + o.NCheckpoints) / (o.NCheckpoints + 1);
        for (long t = stride; t < o.TrainingTokens; t += stride) list.Add(t);
        return list;
    }

    /// <summary>log10(firing frequency + 1e-10) per latent, as SAELens's sparsity.safetensors holds it.</summary>
    static Tensor LogSparsity(Tensor actFreq, long samples)
    {
        using var scope = NewDisposeScope();
        return (actFreq / samples + 1e-10).log10().MoveToOuterDisposeScope();
    }

    /// <summary>What SAELens logs per step (_build_train_step_log_dict): the losses, L0, the trainer's explained
    /// variance, dead latents.</summary>
    static SaeTrainingStep Record(int step, long samples, double lr, double coefficient, Tensor x,
        TrainableSae.StepOutput o, Tensor sinceFired, SaeTrainingOptions options, double threshold)
    {
        using var _ = no_grad();
        var perToken = (o.SaeOut - x).pow(2).sum(-1);
        var totalVariance = (x - x.mean([0])).pow(2).sum(-1);
        double explained = 1 - (perToken.mean() / totalVariance.mean()).item<float>();
        double l0 = o.FeatureActs.ne(0).to(ScalarType.Float32).sum(-1).mean().item<float>();
        var losses = o.Losses.Select(l => (l.Name, (double)l.Value.item<float>())).ToList();
        return new SaeTrainingStep(step + 1, samples, lr, coefficient, losses, l0, explained,
            sinceFired.gt(options.DeadFeatureWindow).sum().item<long>(),
            options.Architecture == "batchtopk" ? threshold : null);
    }
}
