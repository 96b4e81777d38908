using System.CommandLine;

namespace Lens.Cli;

/// <summary>Parses, runs, and turns exceptions into plain messages and exit codes (no stack traces for user
/// mistakes).</summary>
public static class CliRunner
{
    public const int Ok = 0, Failed = 1, Usage = 2;

    public static int Run(RootCommand root, string[] args)
    {
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors) Console.Error.WriteLine($"lens: {e.Message}");
            Console.Error.WriteLine("Run 'lens --help' (or 'lens COMMAND --help') for usage and examples.");
            return Usage;
        }
        NativePreload.Join(); // libtorch is loaded (patched where needed) before a command's first TorchSharp call
        try { return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }); }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"lens: {Lens.Dsl.TerminalText.Visible(e.Message)}");
            return Usage;
        }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine($"lens: {Lens.Dsl.TerminalText.Visible(e.Message)}");
            return Failed;
        }
    }

    static bool IsUserError(Exception e) =>
        e is ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException or IOException
          or InvalidOperationException or KeyNotFoundException or CheckpointException or Lens.IO.SafetensorsException
          or NotSupportedException
          || e.GetType().Name.EndsWith("Exception", StringComparison.Ordinal)
          && e.GetType().Namespace?.StartsWith("Lens", StringComparison.Ordinal) == true;
}

/// <summary>A mistake in how the command was called (exit code 2).</summary>
public sealed class UsageException(string message) : Exception(message);
