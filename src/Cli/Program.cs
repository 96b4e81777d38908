using System.CommandLine;
using Lens.Cli;
using Lens.Cli.Commands;

// Exit codes: 0 success, 1 experiment or model error, 2 usage error.
NativePreload.Start(args);
Lens.Models.ModelSources.Use();
var root = new RootCommand("lens: mechanistic interpretability for .NET (TransformerLens's names, shapes and numbers)")
{
    RunCommand.Create(),
    CheckCommand.Create(),
    TestCommand.Create(),
    DiffCommand.Create(),
    ReplCommand.Create(),
    CacheCommand.Create(),
    DownloadCommand.Create(),
    ModelsCommand.Create(),
    BenchCommand.Create(),
    TrainDemoCommand.Create(),
    SaeCommand.Create(),
    TokenizeCommand.Create(),
    HarvestCommand.Create(),
};
var code = CliRunner.Run(root, args);
NativePreload.Join();
return code;
