using System.CommandLine;
using System.Text.Json;
using Lens.IO;
using Lens.Sae;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Cli.Commands;

/// <summary><c>lens cache</c>: run a model with a full cache and write every activation to safetensors.</summary>
public static class CacheCommand
{
    public static Command Create()
    {
        var model = ModelArgument.Create();
        var text = new Option<string?>("--text")
        {
            Description = "input text (tokenized with the model's tokenizer, BOS prepended as TransformerLens does)"
        };
        var tokens =
            new Option<string?>("--tokens") { Description = "input token ids as JSON: [1,2,3] or [[1,2,3],[4,5,6]]" };
        var output = new Option<string>("--out") { Description = "the .safetensors file to write", Required = true };
        var names = new Option<string[]>("--names")
        {
            Description = "only hooks matching these globs or shorthand names (e.g. 'blocks.*.attn.hook_pattern')",
            AllowMultipleArgumentsPerToken = true
        };
        var attnResult = new Option<bool>("--attn-result")
        {
            Description = "also record per-head attention outputs (use_attn_result)"
        };
        var mask = new Option<string?>("--attention-mask")
        {
            Description = "with --tokens: 1 on real tokens, 0 on pads, same shape as --tokens: [[1,1,0],[1,1,1]] " +
                "(TransformerLens's attention_mask)"
        };
        var saes = new Option<string[]>("--sae")
        {
            Description = "splice an SAE into its hook point (a SAELens folder, or a Gemma Scope params.npz folder " +
                "as FOLDER@HOOK); repeatable"
        };
        var saeErrorTerm = new Option<bool>("--sae-error-term")
        {
            Description =
                "add each SAE's error term, so the model's outputs are unchanged while its features are recorded"
        };
        var grad = new Option<bool>("--grad")
        {
            Description = "also run the mean next-token loss backward and write each activation's gradient as " +
                "'<name>_grad' (and the loss as 'loss')"
        };
        var cmd = new Command("cache", """
            Runs the model with a full activation cache and writes the logits (as 'logits'), the input
            tokens (as 'tokens') and every cached activation under its TransformerLens name.
            Examples:
              lens cache examples/models/tiny-gpt2 --tokens '[[1,2,3],[4,5,6]]' --out acts.safetensors
              lens cache demo-attn-only-2l --text "The cat sat" --names 'blocks.*.attn.hook_pattern' --out p.safetensors
              lens cache examples/models/tiny-gpt2 --tokens '[[5,6,7],[8,9,0]]' --attention-mask '[[1,1,1],[1,1,0]]' --out padded.safetensors
            With --attention-mask the mask is written too (as 'attention_mask').
            With --sae, the run is HookedSAETransformer's: each SAE replaces its hook point's output, and its
            hook points (<hook>.hook_sae_input, _acts_pre, _acts_post, _recons, _error, _output) are cached too.
              lens cache CHECKPOINT --tokens '[[1,2,3]]' --sae my-sae --sae-error-term --out acts.safetensors
              lens cache demo-attn-only-2l --text "The cat sat on the mat" --grad --out grads.safetensors
            With --grad the mean next-token loss is run backward and each activation's gradient written as '<name>_grad' (and the loss as 'loss').
            """)
        { model, text, tokens, output, names, attnResult, mask, saes, saeErrorTerm, grad };
        cmd.SetAction(r => Run(r.GetValue(model)!, r.GetValue(text), r.GetValue(tokens), r.GetValue(output)!,
            r.GetValue(names) ?? [], r.GetValue(attnResult),
            r.GetValue(mask), r.GetValue(saes) ?? [], r.GetValue(saeErrorTerm), r.GetValue(grad)));
        return cmd;
    }

    static int Run(string modelName, string? text, string? tokensJson, string output, string[] names, bool attnResult,
        string? maskJson, string[] saePaths, bool saeErrorTerm, bool grad)
    {
        if ((text is null) == (tokensJson is null)) throw new UsageException("give exactly one of --text or --tokens");
        if (maskJson is not null && tokensJson is null)
            throw new UsageException("--attention-mask goes with --tokens (one --text has no pads)");
        if (saeErrorTerm && saePaths.Length == 0) throw new UsageException("--sae-error-term needs at least one --sae");
        if (OutputPaths.FileProblem(output) is string problem) throw new UsageException($"--out: {problem}");
        if (Directory.Exists(modelName) || File.Exists(modelName))
            foreach (var input in Directory.Exists(modelName) ? Directory.EnumerateFiles(modelName) : [modelName])
                if (OutputPaths.Same(output, input))
                    throw new UsageException(
                        $"--out '{output}' is a file of the model '{modelName}': an output may not overwrite an input");
        using var scope = NewDisposeScope();
        var given = tokensJson is not null ? ParseTokens(tokensJson) : null;
        var attentionMask = maskJson is not null ? ParseTokens(maskJson, "--attention-mask") : null;
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(given!.shape))
            throw new UsageException($"--attention-mask has shape [{string.Join(", ", attentionMask.shape)}] but " +
                $"--tokens has [{string.Join(", ", given.shape)}]: give one 0/1 per token");
        using var model = ModelLoader.Load(modelName);
        if (attnResult) model.Config.UseAttnResult = true;
        var tokens = given ?? model.ToTokens(text!);
        CheckTokens(tokens, model.Config, given is not null ? "--tokens" : "--text");
        var filter = names.Length > 0 ? HookedTransformer.NamesFilter(names) : null;
        var loaded = new List<SparseAutoencoder>();
        using var disposeSaes = new Disposables(loaded);
        foreach (var path in saePaths)
        {
            int at = path.LastIndexOf('@');
            var (folder, hook) = at > 0 && !Directory.Exists(path) ? (path[..at], path[(at + 1)..]) : (path, null);
            loaded.Add(Lens.Hub.SaeHubSource.Load(folder, hook, model.Device));
        }
        using var spliced = model.Saes(loaded, saeErrorTerm);
        if (grad && tokens.shape[^1] < 2)
            throw new UsageException("--grad differentiates the next-token loss, which needs at least 2 tokens");
        using var run = grad
            ? model.RunWithCache(tokens, ReturnType.Both, includeBackward: true, namesFilter: filter,
                attentionMask: attentionMask)
            : model.RunWithCache(tokens, ReturnType.Logits, filter, attentionMask: attentionMask);
        var tensors = new List<KeyValuePair<string, Tensor>> { new("logits", run.Logits), new("tokens", tokens) };
        if (attentionMask is not null) tensors.Add(new("attention_mask", attentionMask));
        if (grad) tensors.Add(new("loss", run.Loss));
        tensors.AddRange(run.Cache);
        SafetensorsFile.Save(output, tensors,
            new Dictionary<string, string> { ["model"] = model.Config.ModelName, ["producer"] = "lens cache" });
        Console.WriteLine($"model {model.Config.ModelName}: {model.Config.NLayers} layers, tokens " +
            $"[{string.Join(", ", tokens.shape)}]");
        foreach (var sae in loaded)
            Console.WriteLine($"{sae} from {sae.Source}" + (saeErrorTerm ? ", with its error term" : ""));
        Console.WriteLine(Tables.Render(["activation", "shape", "dtype"],
            tensors.Select(kv => new[]
            {
                kv.Key, "[" + string.Join(", ", kv.Value.shape) + "]", kv.Value.dtype.ToString().ToLowerInvariant()
            })));
        Console.WriteLine($"wrote {tensors.Count} tensors to {output}");
        return CliRunner.Ok;
    }

    sealed class Disposables(List<SparseAutoencoder> items) : IDisposable
    {
        public void Dispose() { foreach (var i in items) i.Dispose(); }
    }

    /// <summary>[1,2,3] or [[1,2,3],[4,5,6]] → int64 [batch, pos]; anything else is a usage error naming --tokens and
    /// the offending element.</summary>
    public static Tensor ParseTokens(string json, string option = "--tokens")
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 4 });
            root = document.RootElement.Clone();
        }
        catch (JsonException e) { throw new UsageException($"{option} is not valid JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() == 0)
            throw new UsageException($"{option} must be a non-empty JSON array of ids or of id lists");
        bool batch = root[0].ValueKind == JsonValueKind.Array;
        var rows = new List<long[]>();
        foreach (var (row, r) in (batch ? root.EnumerateArray().ToList() : [root]).Select((row, r) => (row, r)))
        {
            if (row.ValueKind != JsonValueKind.Array)
                throw new UsageException(
                    $"{option}: element {r} is {Describe(row)}; a batch is a list of id lists, as in [[1,2],[3,4]]");
            rows.Add(row.EnumerateArray()
                .Select((x, i) => Id(x, batch ? $"row {r}, position {i}" : $"position {i}", option)).ToArray());
        }
        if (rows.Any(r => r.Length != rows[0].Length || r.Length == 0))
            throw new UsageException($"{option} rows must be non-empty and of equal length");
        var flat = rows.SelectMany(r => r).ToArray();
        return tensor(flat, dtype: ScalarType.Int64).reshape(rows.Count, rows[0].Length);
    }

    static long Id(JsonElement x, string where, string option) =>
        x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out var id)
            ? id
            : throw new UsageException($"{option}: the id at {where} is {Describe(x)}; token ids are whole numbers");

    static string Describe(JsonElement x) =>
        x.ValueKind is JsonValueKind.Number or JsonValueKind.String or JsonValueKind.True or JsonValueKind.False
            or JsonValueKind.Null
            ? x.GetRawText() is var raw && raw.Length <= 40 ? raw : raw[..40] + "..."
            : x.ValueKind.ToString().ToLowerInvariant();

    /// <summary>Ids within the model's vocabulary and a length within its context: anything else would reach libtorch
    /// as an out-of-range index.</summary>
    static void CheckTokens(Tensor tokens, HookedTransformerConfig cfg, string option)
    {
        var ids = tokens.data<long>().ToArray();
        var width = (int)tokens.shape[1];
        for (int k = 0; k < ids.Length; k++)
            if (ids[k] < 0 || ids[k] >= cfg.DVocab)
                throw new UsageException($"{option}: id {ids[k]} (row {k / width}, position {k % width}) is out of " +
                    $"range: model {cfg.ModelName} has {cfg.DVocab} tokens (ids 0..{cfg.DVocab - 1})");
        if (width > cfg.NCtx)
            throw new UsageException(
                $"{option}: {width} tokens per row but model {cfg.ModelName}'s context holds {cfg.NCtx} (n_ctx)");
    }
}
