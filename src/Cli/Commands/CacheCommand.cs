using System.CommandLine;
using System.Text.Json;
using Lens.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace Lens.Cli.Commands;

/// <summary><c>lens cache</c>: run a model with a full cache and write every activation to safetensors.</summary>
public static class CacheCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "a model name, hub id, checkpoint folder or llama2.c .bin" };
        var text = new Option<string?>("--text") { Description = "input text (tokenized with the model's tokenizer, BOS prepended as TransformerLens does)" };
        var tokens = new Option<string?>("--tokens") { Description = "input token ids as JSON: [1,2,3] or [[1,2,3],[4,5,6]]" };
        var output = new Option<string>("--out") { Description = "the .safetensors file to write", Required = true };
        var names = new Option<string[]>("--names") { Description = "only hooks matching these globs or shorthand names (e.g. 'blocks.*.attn.hook_pattern')", AllowMultipleArgumentsPerToken = true };
        var attnResult = new Option<bool>("--attn-result") { Description = "also record per-head attention outputs (use_attn_result)" };
        var grad = new Option<bool>("--grad") { Description = "also run the mean next-token loss backward and write each activation's gradient as '<name>_grad' (and the loss as 'loss')" };
        var cmd = new Command("cache", """
            Runs the model with a full activation cache and writes the logits (as 'logits'), the input
            tokens (as 'tokens') and every cached activation under its TransformerLens name.
            Examples:
              lens cache examples/models/tiny-gpt2 --tokens '[[1,2,3],[4,5,6]]' --out acts.safetensors
              lens cache demo-attn-only-2l --text "The cat sat" --names 'blocks.*.attn.hook_pattern' --out p.safetensors
              lens cache demo-attn-only-2l --text "The cat sat on the mat" --grad --out grads.safetensors
            """)
        { model, text, tokens, output, names, attnResult, grad };
        cmd.SetAction(r => Run(r.GetValue(model)!, r.GetValue(text), r.GetValue(tokens), r.GetValue(output)!, r.GetValue(names) ?? [], r.GetValue(attnResult), r.GetValue(grad)));
        return cmd;
    }

    static int Run(string modelName, string? text, string? tokensJson, string output, string[] names, bool attnResult, bool grad)
    {
        if ((text is null) == (tokensJson is null)) throw new UsageException("give exactly one of --text or --tokens");
        using var scope = NewDisposeScope();
        var given = tokensJson is not null ? ParseTokens(tokensJson) : null;
        using var model = ModelLoader.Load(modelName);
        if (attnResult) model.Config.UseAttnResult = true;
        var tokens = given ?? model.ToTokens(text!);
        var filter = names.Length > 0 ? HookedTransformer.NamesFilter(names) : null;
        if (grad && tokens.shape[^1] < 2) throw new UsageException("--grad differentiates the next-token loss, which needs at least 2 tokens");
        using var run = grad ? model.RunWithCache(tokens, ReturnType.Both, includeBackward: true, namesFilter: filter) : model.RunWithCache(tokens, filter);
        var tensors = new List<KeyValuePair<string, Tensor>> { new("logits", run.Logits), new("tokens", tokens) };
        if (grad) tensors.Add(new("loss", run.Loss));
        tensors.AddRange(run.Cache);
        SafetensorsFile.Save(output, tensors, new Dictionary<string, string> { ["model"] = model.Config.ModelName, ["producer"] = "lens cache" });
        Console.WriteLine($"model {model.Config.ModelName}: {model.Config.NLayers} layers, tokens [{string.Join(", ", tokens.shape)}]");
        Console.WriteLine(Tables.Render(["activation", "shape", "dtype"],
            tensors.Select(kv => new[] { kv.Key, "[" + string.Join(", ", kv.Value.shape) + "]", kv.Value.dtype.ToString().ToLowerInvariant() })));
        Console.WriteLine($"wrote {tensors.Count} tensors to {output}");
        return CliRunner.Ok;
    }

    /// <summary>[1,2,3] or [[1,2,3],[4,5,6]] → int64 [batch, pos].</summary>
    public static Tensor ParseTokens(string json)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new UsageException($"--tokens is not valid JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() == 0) throw new UsageException("--tokens must be a non-empty JSON array of ids or of id lists");
        long[][] rows = root[0].ValueKind == JsonValueKind.Array
            ? root.EnumerateArray().Select(r => r.EnumerateArray().Select(x => x.GetInt64()).ToArray()).ToArray()
            : [root.EnumerateArray().Select(x => x.GetInt64()).ToArray()];
        if (rows.Any(r => r.Length != rows[0].Length || r.Length == 0)) throw new UsageException("--tokens rows must be non-empty and of equal length");
        var flat = rows.SelectMany(r => r).ToArray();
        return tensor(flat, dtype: ScalarType.Int64).reshape(rows.Length, rows[0].Length);
    }
}
