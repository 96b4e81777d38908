using System.CommandLine;
using System.Runtime.InteropServices;
using Lens.Datasets;

namespace Lens.Cli.Commands;

/// <summary><c>lens harvest</c>: a model's activations over a corpus, written as a Hugging Face datasets folder;
/// <c>lens harvest merge</c> joins shards.</summary>
public static class HarvestCommand
{
    public static Command Create()
    {
        var model = ModelArgument.Create();
        var corpus = new Option<string?>("--corpus")
        {
            Description = "a .txt file (one document per line), a folder of .txt files, a .jsonl file with a " +
                "\"text\" field, pre-tokenized .arrow / datasets folder (column tokens, input_ids or token_ids), or " +
                ".parquet file / folder (that token column, or a \"text\" column)"
        };
        var hooks = new Option<string[]>("--hooks")
        {
            Description = "hook points: globs or full names, comma-separated (e.g. 'blocks.*.hook_resid_post')",
            AllowMultipleArgumentsPerToken = true
        };
        var context =
            new Option<int?>("--context") { Description = "tokens per row, BOS included (at most the model's n_ctx)" };
        var output = new Option<string?>("--out")
        {
            Description = "the dataset folder (with --shard: the folder that holds shard-I-of-N/)"
        };
        var shard = new Option<string?>("--shard")
        {
            Description = "I/N: this process's share, the I-th of N contiguous ranges of batches (0-based)"
        };
        var batch = new Option<int>("--batch")
        {
            Description = "rows per forward (default 32); part of the result's identity: shards and reruns use the " +
                "same", DefaultValueFactory = _ => 32
        };
        var dtype = new Option<string>("--dtype")
        {
            Description = "stored precision: float32 (default) or float16", DefaultValueFactory = _ => "float32"
        };
        var maxTokens =
            new Option<long?>("--max-tokens") { Description = "harvest only the first MAX_TOKENS / CONTEXT rows" };
        var maxFile = new Option<long>("--max-file-bytes")
        {
            Description = "largest data file (default 500000000, datasets' max_shard_size); a killed run redoes at " +
                "most one file", DefaultValueFactory = _ => DatasetLayout.DefaultMaxFileBytes
        };
        var cmd = new Command("harvest", """
            Runs the model over a corpus packed into rows as TransformerLens's tokenize_and_concatenate packs
            them (BOS per row, EOS between documents) and writes the hooks' activations as a Hugging Face
            datasets folder (datasets.load_from_disk reads it): one column per hook, [context, d...] per row,
            plus token_ids. Resumable: rerun the same command after an interruption. docs/activation-datasets.md.
            Examples:
              lens harvest demo-attn-only-2l --corpus corpus.txt --hooks 'blocks.*.hook_resid_post' --context 128 --out acts
              lens harvest demo-attn-only-2l --corpus corpus.txt --hooks blocks.1.hook_resid_post --context 128 --out acts --shard 0/3
              lens harvest merge acts --out acts-merged
            """)
        { model, corpus, hooks, context, output, shard, batch, dtype, maxTokens, maxFile };
        cmd.SetAction(r => Run(r.GetValue(model)!, r.GetValue(corpus), r.GetValue(hooks) ?? [], r.GetValue(context),
            r.GetValue(output), r.GetValue(shard),
            r.GetValue(batch), r.GetValue(dtype)!, r.GetValue(maxTokens), r.GetValue(maxFile)));
        cmd.Subcommands.Add(MergeCommand());
        return cmd;
    }

    static Command MergeCommand()
    {
        var folder = new Argument<string>("dir") { Description = "the folder holding shard-0-of-N … shard-(N-1)-of-N" };
        var output = new Option<string>("--out") { Description = "the merged dataset folder", Required = true };
        var cmd = new Command("merge", """
            Joins the shards of one harvest into one dataset equal, byte for byte, to the single-process run's.
            Example: lens harvest merge acts --out acts-merged
            """)
        { folder, output };
        cmd.SetAction(r =>
        {
            using var cancel = Interrupts();
            var result = HarvestMerge.Run(r.GetValue(folder)!, r.GetValue(output)!, null, cancel.Token);
            Console.WriteLine(result.RowsComputed == 0
                ? $"{result.Folder} already holds this merge ({result.Rows} rows): nothing to do"
                : $"merged {result.Rows} rows into {result.Folder} in {result.Elapsed.TotalSeconds:0.0} s");
            return CliRunner.Ok;
        });
        return cmd;
    }

    static int Run(string modelName, string? corpus, string[] hookArgs, int? context, string? output, string? shardText,
        int batch, string dtype, long? maxTokens, long maxFile)
    {
        if (corpus is null) throw new UsageException("harvest needs --corpus");
        if (context is null) throw new UsageException("harvest needs --context");
        if (output is null) throw new UsageException("harvest needs --out");
        var hooks =
            hookArgs.SelectMany(
                h => h.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
        if (hooks.Count == 0) throw new UsageException("harvest needs --hooks");
        var (index, count) = ParseShard(shardText);
        var options =
            new HarvestOptions(corpus, hooks, context.Value, output, batch, dtype, maxTokens, index, count, maxFile);
        if (!File.Exists(corpus) && !Directory.Exists(corpus))
            throw new UsageException($"--corpus '{corpus}': no such file or folder");
        using var model = ModelLoader.Load(modelName);
        using var cancel = Interrupts();
        var bar = new ProgressLine();
        var result = ActivationHarvest.Run(model, modelName, options, bar, cancel.Token);
        bar.End();
        if (result.RowsComputed == 0 && result.FilesReused > 0)
        {
            Console.WriteLine($"{result.Folder} already holds this harvest ({result.Rows} rows): nothing to do");
            return CliRunner.Ok;
        }
        double seconds = result.Elapsed.TotalSeconds;
        Console.WriteLine($"harvested {result.RowsComputed} rows × {context} tokens into {result.Folder} "
            + $"in {seconds:0.0} s ({result.RowsComputed * context / Math.Max(seconds, 1e-9):0} tokens/s)"
            + (result.FilesReused > 0 ? $"; {result.FilesReused} files were already complete" : ""));
        Console.WriteLine(Tables.Render(["column", "shape per row", "dtype"],
            result.Columns.Select(c => new[] { c.Name, "[" + string.Join(", ", c.Shape) + "]", c.Dtype })));
        return CliRunner.Ok;
    }

    static (int Index, int Count) ParseShard(string? text)
    {
        if (text is null) return (0, 1);
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var i) || !int.TryParse(parts[1], out var n) || n < 1
            || i < 0 || i >= n)
            throw new UsageException($"--shard '{text}': give I/N with 0 ≤ I < N, e.g. 0/3");
        return (i, n);
    }

    /// <summary>Ctrl-C and SIGTERM stop the run between batches; the files already renamed stay, and a rerun
    /// resumes.</summary>
    static CancellationTokenSource Interrupts()
    {
        var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cancel.Cancel(); });
        return cancel;
    }

    /// <summary>A progress line on stderr: rows, tokens/s and the time left.</summary>
    sealed class ProgressLine : IProgress<HarvestProgress>
    {
        bool _drawn;
        readonly System.Diagnostics.Stopwatch _sinceLine = System.Diagnostics.Stopwatch.StartNew();

        public void Report(HarvestProgress p)
        {
            // Into a log (redirected), a line every 10 s and the last one; on a terminal, redrawn in place.
            if (Console.IsErrorRedirected && p.RowsDone < p.RowsTotal && p.RowsDone > 0
                && _sinceLine.Elapsed < TimeSpan.FromSeconds(10)) return;
            _sinceLine.Restart();
            var eta = p.Remaining is TimeSpan t ? $", {t:hh\\:mm\\:ss} left" : "";
            var line = $"harvest: {p.RowsDone}/{p.RowsTotal} rows " +
                $"({100.0 * p.RowsDone / Math.Max(1, p.RowsTotal):0.0} %), {p.TokensPerSecond:0} tokens/s{eta}";
            if (Console.IsErrorRedirected) Console.Error.WriteLine(line);
            else { Console.Error.Write("\r" + line.PadRight(78)); _drawn = true; }
        }

        public void End() { if (_drawn) Console.Error.WriteLine(); }
    }
}
