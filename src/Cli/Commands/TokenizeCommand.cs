using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Lens.Hub;
using Lens.Pretrained;
using Lens.Tokenization;

namespace Lens.Cli.Commands;

/// <summary><c>lens tokenize PATH --text "..."</c>: a checkpoint's own tokenizer applied to one text, as
/// JSON.</summary>
public static class TokenizeCommand
{
    static readonly JsonSerializerOptions RelaxedJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var path = new Argument<string>("path")
        {
            Description = "a model name or hub id (already downloaded), a checkpoint folder, or a tokenizer folder"
        };
        var text = new Option<string>("--text") { Description = "the text to tokenize", Required = true };
        var noSpecial = new Option<bool>("--no-special")
        {
            Description = "add no special tokens (Hugging Face's add_special_tokens=False)"
        };
        var cmd = new Command("tokenize", """
            Tokenizes a text with a checkpoint's own tokenizer files (tokenizer.json, or vocab.json +
            merges.txt, with tokenizer_config.json) as Hugging Face does, and prints
            {"ids": [...], "tokens": [...]} as JSON: tokens are the pieces as the vocabulary spells them
            (convert_ids_to_tokens). Special tokens (BOS, ...) are added as the files say unless --no-special.
            Examples:
              lens tokenize path/to/Meta-Llama-3-8B --text "Hello world"
              lens tokenize gpt2-small --text "Hello world" --no-special
            """)
        { path, text, noSpecial };
        cmd.SetAction(r => Run(r.GetValue(path)!, r.GetValue(text)!, r.GetValue(noSpecial)));
        return cmd;
    }

    static int Run(string path, string text, bool noSpecial)
    {
        var tokenizer = CheckpointTokenizer.FromFolder(FolderOf(path));
        var ids = tokenizer.Encode(text, addSpecialTokens: !noSpecial);
        var json = JsonSerializer.Serialize(new { ids, tokens = tokenizer.Pieces(ids) }, RelaxedJson);
        Console.WriteLine(json);
        return CliRunner.Ok;
    }

    /// <summary>The folder holding the tokenizer files: the path itself, the folder of a file, or a downloaded model's
    /// snapshot.</summary>
    static string FolderOf(string path)
    {
        if (Directory.Exists(path)) return path;
        if (File.Exists(path)) return Path.GetDirectoryName(Path.GetFullPath(path))!;
        var repoId = OfficialModels.TryGet(path)?.RepoId ?? path.Trim();
        string? commit;
        try { commit = HubCache.TryGetCachedCommit(repoId, "main", null); }
        catch (ArgumentException) { commit = null; }
        if (commit is null)
            throw new UsageException($"'{path}' is neither a folder nor a downloaded model (run 'lens " +
                $"download {path}' first, or give a folder holding tokenizer.json)");
        return Path.Combine(HubCache.DefaultCacheDir(), HubCache.RepoFolderName(repoId), "snapshots", commit);
    }
}
