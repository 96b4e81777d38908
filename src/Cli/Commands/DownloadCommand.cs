using System.CommandLine;
using System.Text.RegularExpressions;
using Lens.Hub;
using Lens.Pretrained;

namespace Lens.Cli.Commands;

/// <summary><c>lens download NAME</c>: fetch a model's files into the hub cache and say where they are.</summary>
public static partial class DownloadCommand
{
    public static Command Create()
    {
        var name = new Argument<string>("name")
        {
            Description = "a known model name or alias (see 'lens models') or a hub id such as EleutherAI/pythia-70m"
        };
        var cmd = new Command("download", """
            Downloads a model's config, tokenizer and safetensors weights into the Hugging Face cache
            (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub; shared with Python's
            huggingface_hub) with a progress bar, and prints the folder holding them. Files already
            cached are not fetched again. HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured.
            Examples:
              lens download gpt2-small
              lens download EleutherAI/pythia-70m
            """)
        { name };
        cmd.SetAction(r => Run(r.GetValue(name)!));
        return cmd;
    }

    [GeneratedRegex(@"^(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)?[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
    private static partial Regex RepoIdPattern();

    static int Run(string name)
    {
        var known = OfficialModels.TryGet(name);
        var repoId = known?.RepoId ?? name.Trim();
        if (known is null)
        {
            if (Directory.Exists(name) || File.Exists(name))
                throw new UsageException(
                    $"'{name}' is a local path: there is nothing to download (give a model name or hub id)");
            if (!RepoIdPattern().IsMatch(repoId) || repoId.Contains("--") || repoId.Contains(".."))
                throw new UsageException($"'{name}' is neither a known model name nor a hub id (owner/name)"
                    + Suggest(name));
        }
        var options = HubOptions.FromEnvironment();
        string folder;
        try { folder = PretrainedDownloads.Fetch(repoId, options, verify: true); }
        catch (HubException e) when (e.Kind == HubErrorKind.NotFound && known is null)
        {
            throw new HubException(e.Kind, e.Message + Suggest(name), e, e.StatusCode);
        }
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => (Name: Path.GetRelativePath(folder, f), Bytes: SizeOf(f)))
            .OrderBy(f => f.Name, StringComparer.Ordinal).ToList();
        Console.WriteLine(known is null
            ? $"{repoId}: {files.Count} files, {ConsoleProgressBar.Bytes(files.Sum(f => f.Bytes))}"
            : $"{name} (hub id {repoId}): {files.Count} files, {ConsoleProgressBar.Bytes(files.Sum(f => f.Bytes))}");
        Console.WriteLine(Tables.Render(["file", "size"],
            files.Select(f => new[] { f.Name, ConsoleProgressBar.Bytes(f.Bytes) })));
        Console.WriteLine($"files are in {folder}");
        return CliRunner.Ok;
    }

    /// <summary>The size of a snapshot file: snapshots hold links to the cache's blobs.</summary>
    static long SizeOf(string path)
    {
        var info = new FileInfo(path);
        return (info.LinkTarget is null ? info : (FileInfo?)info.ResolveLinkTarget(returnFinalTarget: true) ?? info)
            .Length;
    }

    static string Suggest(string name)
    {
        var near = Suggestions.Nearest(name, OfficialModels.AllNames, 3);
        return near.Count > 0 ? $"; did you mean {string.Join(", ", near.Select(n => $"'{n}'"))}?" : "";
    }
}
