namespace Lens.Sae.Training;

/// <summary>
/// The per-step values SAELens's trainer schedules, in closed form for step s (0-based, the value the
/// step's update uses).
/// </summary>
public static class SaeSchedules
{
    /// <summary>
    /// optim.py get_lr_scheduler: a SequentialLR of LinearLR(1/W → 1 over W − 1 iterations) for the warm-up,
    /// the main schedule (constant lr, or CosineAnnealingLR to lr_end over T − W − D steps), and
    /// LinearLR(lr_end/lr → 0 over D) for the decay (from lr itself under the constant schedule, which
    /// ignores lr_end). Hence lr·(s+1)/W while s &lt; W, then the main schedule, then
    /// end·(1 − (s − (T − D))/D) for the last D steps.
    /// </summary>
    public static double LearningRate(SaeTrainingOptions o, int step)
    {
        int warm = o.LrWarmUpSteps, decay = o.LrDecaySteps, total = o.TotalSteps;
        if (warm > 0 && step < warm) return o.Lr * (step + 1) / warm;
        bool constant = o.LrSchedulerName == "constant";
        if (decay > 0 && step >= total - decay)
            return (constant ? o.Lr : o.LrEndValue) * (1 - (double)(step - (total - decay)) / decay);
        if (constant) return o.Lr;
        int span = total - warm - decay;
        return o.LrEndValue + (o.Lr - o.LrEndValue) * (1 + Math.Cos(Math.PI * (step - warm) / span)) / 2;
    }

    /// <summary>
    /// optim.py CoefficientScheduler: 0 at the first step when there is a warm-up, then final·s/W,
    /// reaching the final value at step W (the value is read before the scheduler's step).
    /// </summary>
    public static double L1Coefficient(SaeTrainingOptions o, int step) =>
        o.L1WarmUpSteps > 0 && step < o.L1WarmUpSteps ? o.L1Coefficient * step / o.L1WarmUpSteps : o.L1Coefficient;
}
