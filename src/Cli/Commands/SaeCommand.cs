using System.CommandLine;
using Lens.Hub;
using Lens.Sae;
using Lens.Sae.Training;
using static TorchSharp.torch;

namespace Lens.Cli.Commands;

/// <summary>
/// <c>lens sae train</c>: trains an SAE on a model's activations at one hook point with SAELens's trainer and writes it
/// in SAELens's layout.
/// <c>lens sae dashboard</c>: writes an offline HTML dashboard of one or a few SAE features over a set of inputs.
/// </summary>
public static class SaeCommand
{
    public static Command Create()
    {
        var cmd = new Command("sae",
            "Sparse autoencoders: train one on a model's activations, or draw its features' dashboards (docs/sae.md).")
        {
            Train(), Dashboard()
        };
        return cmd;
    }

    static Command Train()
    {
        // Create() must not touch Lens.Core: its module initializer loads libtorch, which `lens --help` should not wait
        // for.
        var model = ModelArgument.Create();
        var hook = new Option<string>("--hook")
        {
            Description = "the hook point whose activations the SAE learns (e.g. blocks.0.hook_resid_post)",
            Required = true
        };
        var output = new Option<string>("--out")
        {
            Description = "the folder to write (cfg.json, sae_weights.safetensors, sparsity.safetensors)",
            Required = true
        };
        var inputs = new Option<string?>("--inputs")
        {
            Description = "a UTF-8 text file, one document per line, tokenized and packed into rows of " +
                "--context-size as SAELens does"
        };
        var repeat = RepeatRandomOption();
        var dataset = new Option<string?>("--dataset")
        {
            Description = "instead of --inputs: an activation dataset written by lens harvest (or its shard " +
                "folders), trained on its --hook column"
        };
        var contextSize = new Option<int>("--context-size")
        {
            Description = "tokens per row with --inputs (BOS included)", DefaultValueFactory = _ => 128
        };
        var architecture = new Option<string>("--architecture")
        {
            Description = "standard (L1 penalty), topk, or batchtopk (saved as jumprelu)",
            DefaultValueFactory = _ => "standard"
        };
        var dSae = new Option<int>("--d-sae") { Description = "number of latents", Required = true };
        var k = new Option<double>("--k")
        {
            Description = "topk: latents per token; batchtopk: the batch's average", DefaultValueFactory = _ => 100
        };
        var l1 = new Option<double>("--l1-coefficient")
        {
            Description = "standard: the sparsity penalty's coefficient", DefaultValueFactory = _ => 1.0
        };
        var l1Warm = new Option<int>("--l1-warm-up-steps")
        {
            Description = "standard: steps over which the coefficient rises from 0"
        };
        var tokens = new Option<long>("--training-tokens")
        {
            Description = "activations to train on (a multiple of the batch)", DefaultValueFactory = _ => 2_000_000
        };
        var batch = new Option<int>("--train-batch-size-tokens")
        {
            Description = "activations per step", DefaultValueFactory = _ => 4096
        };
        var lr = new Option<double>("--lr") { Description = "Adam's learning rate", DefaultValueFactory = _ => 3e-4 };
        var scheduler = new Option<string>("--lr-scheduler-name")
        {
            Description = "constant or cosineannealing", DefaultValueFactory = _ => "constant"
        };
        var warm = new Option<int>("--lr-warm-up-steps") { Description = "linear learning-rate warm-up" };
        var decay = new Option<int>("--lr-decay-steps") { Description = "linear decay to 0 over the last steps" };
        var lrEnd = new Option<double?>("--lr-end")
        {
            Description = "where cosine annealing ends and the decay starts (default lr/10)"
        };
        var deadWindow = new Option<int>("--dead-feature-window")
        {
            Description = "steps without firing after which a latent is dead", DefaultValueFactory = _ => 1000
        };
        var samplingWindow = new Option<int>("--feature-sampling-window")
        {
            Description = "steps after which firing frequencies restart", DefaultValueFactory = _ => 2000
        };
        var checkpoints =
            new Option<int>("--n-checkpoints") { Description = "intermediate checkpoints, evenly spaced" };
        var checkpointPath = new Option<string?>("--checkpoint-path")
        {
            Description = "their folder (one subfolder per checkpoint, named by the activations seen)"
        };
        var noBDec = new Option<bool>("--no-apply-b-dec-to-input")
        {
            Description = "do not subtract b_dec from the input before encoding"
        };
        var exclude = new Option<long[]>("--exclude-token")
        {
            Description = "leave positions holding this token id out of training (repeatable; e.g. BOS)",
            AllowMultipleArgumentsPerToken = true
        };
        var excludeBos =
            new Option<bool>("--exclude-bos") { Description = "leave the model's BOS positions out of training" };
        var bufferRows = new Option<int>("--buffer-size")
        {
            Description = "activations gathered before each shuffle (SAELens's mixing buffer)",
            DefaultValueFactory = _ => 0
        };
        var sequences = new Option<int>("--sequences-per-forward")
        {
            Description = "rows per model forward while gathering activations", DefaultValueFactory = _ => 64
        };
        var seed = new Option<long>("--seed")
        {
            Description = "seeds the initial weights, the inputs and the shuffling", DefaultValueFactory = _ => 42
        };
        var threads = new Option<int?>("--threads")
        {
            Description = "torch threads (1 makes a run reproducible to the bit on a given CPU)"
        };
        var logEvery = new Option<int>("--log-every")
        {
            Description = "print the losses, L0, explained variance and dead latents every N steps (0: never)",
            DefaultValueFactory = _ => 100
        };
        var cmd = new Command("train", """
            Trains a sparse autoencoder on a model's activations at one hook point with SAELens 6.18's trainer
            (Adam, learning-rate warm-up and decay, the L1 coefficient's warm-up, decoder-norm-weighted L1,
            TopK with its AuxK loss, BatchTopK saved as JumpReLU, dead-latent tracking) and writes it in
            SAELens's layout: SAE.load_from_disk, `lens cache --sae` and Lens's loader read it back.
            Examples:
              lens sae train demo-attn-only-2l --hook blocks.0.hook_resid_post --repeat-random 50 --exclude-bos \
                --architecture topk --k 8 --d-sae 256 --training-tokens 1024000 --lr 1e-3 --out my-sae
              lens sae train gpt2 --hook blocks.6.hook_resid_post --inputs corpus.txt --d-sae 12288 \
                --l1-coefficient 5 --l1-warm-up-steps 1000 --lr-warm-up-steps 1000 --out gpt2-l6-sae
            """)
        { model, hook, output, inputs, repeat, dataset, contextSize, architecture, dSae, k, l1, l1Warm, tokens, batch,
            lr, scheduler, warm, decay, lrEnd,
          deadWindow, samplingWindow, checkpoints, checkpointPath, noBDec, exclude, excludeBos, bufferRows, sequences,
          seed, threads, logEvery };
        cmd.SetAction(r =>
        {
            var options = new SaeTrainingOptions
            {
                Architecture = r.GetValue(architecture)!, DSae = r.GetValue(dSae), K = r.GetValue(k),
                L1Coefficient = r.GetValue(l1),
                L1WarmUpSteps = r.GetValue(l1Warm), TrainingTokens = r.GetValue(tokens),
                TrainBatchSizeTokens = r.GetValue(batch), Lr = r.GetValue(lr),
                LrSchedulerName = r.GetValue(scheduler)!, LrWarmUpSteps = r.GetValue(warm),
                LrDecaySteps = r.GetValue(decay), LrEnd = r.GetValue(lrEnd),
                DeadFeatureWindow = r.GetValue(deadWindow), FeatureSamplingWindow = r.GetValue(samplingWindow),
                NCheckpoints = r.GetValue(checkpoints),
                CheckpointPath = r.GetValue(checkpointPath), ApplyBDecToInput = !r.GetValue(noBDec),
                Seed = r.GetValue(seed), Progress = !Console.IsErrorRedirected,
            };
            return Run(r.GetValue(model)!, r.GetValue(hook)!, r.GetValue(output)!, r.GetValue(inputs),
                r.GetValue(repeat), r.GetValue(dataset), r.GetValue(contextSize), options,
                r.GetValue(exclude) ?? [], r.GetValue(excludeBos), r.GetValue(bufferRows), r.GetValue(sequences),
                r.GetValue(threads), r.GetValue(logEvery));
        });
        return cmd;
    }

    static int Run(string modelName, string hook, string output, string? inputs, int? repeat, string? dataset,
        int contextSize, SaeTrainingOptions options,
        long[] exclude, bool excludeBos, int bufferRows, int sequences, int? threads, int logEvery)
    {
        if (new object?[] { inputs, repeat, dataset }.Count(o => o is not null) != 1)
            throw new UsageException("give exactly one of --inputs FILE, --repeat-random N or --dataset DIR");
        if (dataset is not null && !Directory.Exists(dataset))
            throw new UsageException($"--dataset: no such folder '{dataset}'");
        if (Lens.IO.OutputPaths.FolderProblem(output) is string problem) throw new UsageException($"--out: {problem}");
        if (inputs is not null && !File.Exists(inputs)) throw new UsageException($"--inputs: no such file '{inputs}'");
        if (threads is int t && t <= 0) throw new UsageException($"--threads must be positive (got {t})");
        if (logEvery < 0) throw new UsageException($"--log-every must be >= 0 (got {logEvery})");
        int before = get_num_threads();
        if (threads is int n) set_num_threads(n);
        try
        {
            using var model = ModelLoader.Load(modelName);
            var excluded = exclude.ToList();
            if (excludeBos)
            {
                if (model.Tokenizer?.BosTokenId is not int bos)
                    throw new UsageException("--exclude-bos: the model's tokenizer has no BOS token");
                excluded.Add(bos);
            }
            if (dataset is not null)
                return TrainOnDataset(model, Lens.Datasets.ActivationDataset.Open(dataset), hook, output, options,
                    logEvery);
            var request = new SaeTrainingRequest(hook, options,
                inputs is null
                    ? SaeTrainingInputs.Repeated(repeat!.Value)
                    : SaeTrainingInputs.TextFile(inputs, contextSize), excluded, bufferRows, sequences);
            Console.WriteLine($"training a {options.Architecture} SAE (d_sae {options.DSae}) at {hook} " +
                $"of {model.Config.ModelName}: {options.TotalSteps} steps of {options.TrainBatchSizeTokens} " +
                $"activations, lr {options.Lr}, seed {options.Seed}");
            using var result = SaeTraining.Run(model, request, step => LogStep(step, options, logEvery));
            return Saved(result, output, request.Metadata(model));
        }
        finally { set_num_threads(before); }
    }

    static int TrainOnDataset(HookedTransformer model, Lens.Datasets.ActivationDataset dataset, string hook,
        string output, SaeTrainingOptions options, int logEvery)
    {
        var context = dataset.Column("token_ids").Shape[0];
        var metadata = new SaeMetadata
        {
            HookName = hook, ModelName = model.Config.ModelName, ContextSize = context,
            PrependBos = model.Config.DefaultPrependBos,
            DatasetPath = dataset.Path, TrainedWith = "Lens (SAELens 6.18.0's trainer)",
        };
        Console.WriteLine($"training a {options.Architecture} SAE (d_sae {options.DSae}) at {hook} from the " +
            $"dataset {dataset.Path} ({dataset.RowCount} rows of {context} tokens): {options.TotalSteps} steps " +
            $"of {options.TrainBatchSizeTokens} activations, lr {options.Lr}, seed {options.Seed}");
        using var result = SaeTraining.Run(dataset, hook, options, metadata, step => LogStep(step, options, logEvery));
        return Saved(result, output, metadata);
    }

    static void LogStep(SaeTrainingStep step, SaeTrainingOptions options, int logEvery)
    {
        if (logEvery > 0 && (step.Step % logEvery == 0 || step.Step == options.TotalSteps))
        {
            if (options.Progress) Console.Error.Write("\r\x1b[K");
            Console.WriteLine($"step {step.Step,6} " +
                $" {string.Join("  ", step.Losses.Select(l => $"{l.Name} {l.Value:G5}"))}  l0 {step.L0:F2}  " +
                $"explained_variance {step.ExplainedVariance:F4}  dead {step.DeadFeatures}  lr {step.Lr:G3}");
        }
    }

    static int Saved(SaeTrainingResult result, string output, SaeMetadata metadata)
    {
        SaeCheckpoint.Save(result.Sae, output, metadata, result.LogFeatureSparsity);
        Console.WriteLine($"trained in {result.Elapsed.TotalSeconds:F1} s " +
            $"({result.Samples / Math.Max(result.Elapsed.TotalSeconds, 1e-9):F0} " +
            $"activations/s); {result.DeadFeatures} dead latents; wrote {output}");
        foreach (var c in result.Checkpoints) Console.WriteLine($"checkpoint {c}");
        return CliRunner.Ok;
    }

    static Command Dashboard()
    {
        var model = ModelArgument.Create();
        var saePath = new Option<string>("--sae")
        {
            Description = "the SAE: a folder (SAELens layout or Gemma Scope params.npz) or a hub id " +
                "owner/repo[/folder]", Required = true
        };
        var at =
            new Option<string?>("--at") { Description = "attach the SAE at this hook point instead of its config's" };
        var features = new Option<int[]>("--feature")
        {
            Description = "a latent to show (repeatable)", Required = true, AllowMultipleArgumentsPerToken = true
        };
        var inputs = new Option<string?>("--inputs")
        {
            Description = "a UTF-8 text file, one input per line (tokenized with the model's BOS setting)"
        };
        var repeat = RepeatRandomOption();
        var rows = new Option<int>("--rows")
        {
            Description = "with --repeat-random: how many rows", DefaultValueFactory = _ => 64
        };
        var seed = new Option<long>("--seed")
        {
            Description = "with --repeat-random: the seed of the random ids", DefaultValueFactory = _ => 0
        };
        var top =
            new Option<int>("--top") { Description = "top-activating contexts shown", DefaultValueFactory = _ => 10 };
        var before = new Option<int>("--before")
        {
            Description = "tokens shown before each top-activating token", DefaultValueFactory = _ => 8
        };
        var after = new Option<int>("--after") { Description = "tokens shown after it", DefaultValueFactory = _ => 4 };
        var logitTokens = new Option<int>("--logit-tokens")
        {
            Description = "promoted / suppressed tokens of the decoder direction", DefaultValueFactory = _ => 10
        };
        var output = new Option<string>("--out") { Description = "the HTML file to write", Required = true };
        var cmd = new Command("dashboard", """
            Writes a self-contained HTML dashboard for SAE features: the top-activating contexts over the inputs
            (tokens shaded by the feature's activation, the value on hover), a histogram of the activations where
            the feature fires, and the tokens its decoder direction promotes and suppresses. The SAE is spliced in
            with its error term, so the model's numbers are unchanged.
            Example:
              lens sae dashboard demo-attn-only-2l --sae models/demo-attn-only-2l-sae --feature 79 --repeat-random 50 --out f79.html
            """)
        { model, saePath, at, features, inputs, repeat, rows, seed, top, before, after, logitTokens, output };
        cmd.SetAction(r => RunDashboard(r.GetValue(model)!, r.GetValue(saePath)!, r.GetValue(at),
            r.GetValue(features) ?? [], r.GetValue(inputs), r.GetValue(repeat),
            r.GetValue(rows), r.GetValue(seed), new FeatureSummaryOptions
            {
                TopContexts = r.GetValue(top), Before = r.GetValue(before), After = r.GetValue(after),
                LogitTokens = r.GetValue(logitTokens),
            }, r.GetValue(output)!));
        return cmd;
    }

    static int RunDashboard(string modelName, string saePath, string? at, int[] features, string? inputs, int? repeat,
        int rows, long seed, FeatureSummaryOptions options, string output)
    {
        if ((inputs is null) == (repeat is null))
            throw new UsageException("give exactly one of --inputs FILE or --repeat-random N");
        if (Lens.IO.OutputPaths.FileProblem(output) is string problem) throw new UsageException($"--out: {problem}");
        if (!Directory.Exists(saePath) && !File.Exists(saePath) && !SaeHubSource.IsRepoId(saePath))
            throw new UsageException($"--sae: '{saePath}' is no folder, params.npz or hub id (owner/repo[/folder])");
        if (inputs is not null && !File.Exists(inputs)) throw new UsageException($"--inputs: no such file '{inputs}'");
        if (inputs is not null && Lens.IO.OutputPaths.Same(output, inputs))
            throw new UsageException($"--out '{output}' is the --inputs file: an output may not overwrite an input");
        if (repeat is int n && n <= 0) throw new UsageException($"--repeat-random must be positive (got {n})");
        if (rows <= 0) throw new UsageException($"--rows must be positive (got {rows})");
        if (seed < 0) throw new UsageException($"--seed must be >= 0 (got {seed})");
        if (features.Length == 0) throw new UsageException("give at least one --feature");
        string[] lines = [];
        if (inputs is not null)
        {
            lines = File.ReadAllLines(inputs).Where(l => l.Length > 0).ToArray();
            if (lines.Length == 0) throw new UsageException($"--inputs: '{inputs}' has no non-empty line");
        }
        using var model = ModelLoader.Load(modelName);
        using var sae = SaeHubSource.Load(saePath, at);
        var tokens = new List<Tensor>();
        long rowCount;
        try
        {
            if (repeat is int length)
            {
                var rep = Lens.Analysis.RepeatedTokens.ForModel(model, length, 2, rows, (ulong)seed);
                tokens.Add(rep.Tokens.clone());
                rep.Dispose();
            }
            else
            {
                if (model.Tokenizer is null)
                    throw new UsageException(
                        $"--inputs: the model '{modelName}' has no tokenizer; use --repeat-random");
                tokens.AddRange(lines.Select(l => model.ToTokens(l)));
            }
            var page = Lens.Visualization.FeatureDashboard.Build(model, sae, features, tokens, options);
            page.Save(output);
            rowCount = tokens.Sum(t => t.shape[0]);
        }
        finally { foreach (var t in tokens) t.Dispose(); }
        Console.WriteLine($"wrote {output}: features {string.Join(", ", features)} of the SAE at {sae.HookName} " +
            $"over {rowCount} rows");
        return CliRunner.Ok;
    }

    /// <summary>`--repeat-random N`, which `sae train` and `sae dashboard` read alike (a new instance per
    /// command).</summary>
    static Option<int?> RepeatRandomOption() => new("--repeat-random")
    {
        Description = "instead of --inputs: rows of BOS + N random ids from the model's random-token range, the " +
            "block repeated twice"
    };
}
