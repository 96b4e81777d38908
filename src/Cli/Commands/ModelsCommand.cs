using System.CommandLine;
using Lens.Hub;
using Lens.Pretrained;

namespace Lens.Cli.Commands;

/// <summary><c>lens models</c>: the known model names, their hub ids, and what the cache holds.</summary>
public static class ModelsCommand
{
    public static Command Create()
    {
        var cmd = new Command("models", """
            Lists the model names Lens knows (TransformerLens's official names and aliases) with their
            hub ids, whether each is in the hub cache (ready to load offline) and its size on disk, then
            any other repositories in the cache. Any hub id or checkpoint folder loads too.
            Example:
              lens models
            """);
        cmd.SetAction(_ => Run());
        return cmd;
    }

    static int Run()
    {
        var cacheDir = HubCache.DefaultCacheDir();
        var cached = HubCache.ListCachedRepos(cacheDir).ToDictionary(r => r.RepoId, StringComparer.OrdinalIgnoreCase);
        Console.WriteLine($"hub cache: {cacheDir}");
        Console.WriteLine();
        var rows = OfficialModels.All.Select(m =>
        {
            var repo = cached.GetValueOrDefault(m.RepoId);
            var state = repo is null
                ? "no"
                : PretrainedDownloads.CachedSnapshot(m.RepoId, cacheDir) is not null ? "yes" : "partial";
            return new[]
            {
                m.Name, m.RepoId, m.Family, state, repo is null ? "-" : ConsoleProgressBar.Bytes(repo.SizeOnDisk),
                m.Aliases.Count > 0 ? string.Join(", ", m.Aliases) : "-",
            };
        });
        Console.WriteLine(Tables.Render(["name", "hub id", "family", "cached", "size", "aliases"], rows));

        var known = new HashSet<string>(OfficialModels.All.Select(m => m.RepoId), StringComparer.OrdinalIgnoreCase);
        var others =
            cached.Values.Where(r => !known.Contains(r.RepoId)).OrderBy(r => r.RepoId, StringComparer.Ordinal).ToList();
        Console.WriteLine();
        if (others.Count == 0) Console.WriteLine("no other repositories in the cache");
        else
        {
            Console.WriteLine("other repositories in the cache:");
            Console.WriteLine(Tables.Render(["hub id", "loadable", "size", "snapshots"], others.Select(r => new[]
            {
                r.RepoId, PretrainedDownloads.CachedSnapshot(r.RepoId, cacheDir) is not null ? "yes" : "no",
                ConsoleProgressBar.Bytes(r.SizeOnDisk), r.Snapshots.Count.ToString(CultureInfo.InvariantCulture),
            })));
        }
        return CliRunner.Ok;
    }
}
