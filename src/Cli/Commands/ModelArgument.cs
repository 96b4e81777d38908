using System.CommandLine;

namespace Lens.Cli.Commands;

/// <summary>The `model` argument of the commands that load a model by any of the routes `model` takes in an
/// experiment (`lens cache`, `lens harvest`, `lens sae train`, `lens sae dashboard`).</summary>
static class ModelArgument
{
    /// <summary>A new instance: System.CommandLine reads a value by the symbol that parsed it, so each command needs
    /// its own.</summary>
    public static Argument<string> Create() =>
        new("model") { Description = "a model name, hub id, checkpoint folder or llama2.c .bin" };
}
