using System.CommandLine;
using Lens.Dsl;
using Lens.Dsl.Runtime;

namespace Lens.Cli.Commands;

/// <summary><c>lens repl</c>: an interactive prompt that keeps the model loaded; statements run as they are
/// entered.</summary>
public static class ReplCommand
{
    const string Help = """
        Type experiment statements (see src/Dsl/LANGUAGE.md); each runs as soon as it is complete
        (an `ablate ... {` block runs when its `}` closes). The model stays loaded between statements.
          :help   this text        :quit   leave (or Ctrl+D)
        Up/down arrows recall earlier lines.
        """;

    public static Command Create()
    {
        var model = new Option<string?>("--model")
        {
            Description =
                $"the model to load (default {ExperimentEnvironment.DefaultModel}, or the first `model` statement)"
        };
        var device = new Option<string?>("--device") { Description = "cpu, cuda or cuda:N" };
        var cmd = new Command("repl", """
            An interactive prompt for the experiment language: enter statements one per line and see
            each result at once; the model is loaded once and kept. Reads standard input, so it also
            runs piped statements. Mistakes are reported and the session goes on.
            Examples:
              lens repl
              lens repl --model ./models/my-model
              printf 'input repeat random 20\nscore induction\n' | lens repl
            """)
        { model, device };
        cmd.SetAction(r => Run(r.GetValue(model), r.GetValue(device)));
        return cmd;
    }

    static int Run(string? model, string? device)
    {
        using var environment = new ExperimentEnvironment
        {
            FileName = "<repl>",
            SourceText = "",
            ModelOverride = model,
            DeviceOverride = ExperimentFiles.Device(device),
            OnResult = result => Console.WriteLine(TerminalText.Visible(result.Value.ToText())),
        };
        var session = new ExperimentSession(environment);
        var editor = new LineEditor();
        bool interactive = LineEditor.Interactive;
        if (interactive)
            Console.WriteLine($"lens repl: the experiment language, one statement per line " +
                $"(model {session.State.ModelName}). :help for help, :quit to leave.");
        int failures = 0, lineNumber = 0, firstLine = 1;
        var pending = "";
        while (editor.ReadLine(pending.Length == 0 ? "lens> " : "...   ") is string line)
        {
            lineNumber++;
            if (pending.Length == 0)
            {
                firstLine = lineNumber;
                var command = line.Trim();
                if (command is ":quit" or ":q" or ":exit") break;
                if (command is ":help" or ":h") { Console.WriteLine(Help); continue; }
                if (command.Length == 0) continue;
            }
            pending += line + "\n";
            if (session.NeedsMoreLines(pending)) continue;
            var text = pending;
            pending = "";
            try { session.Submit(text, firstLine); }
            catch (DslParseException e) { Console.Error.WriteLine(e.Message); failures++; }
            catch (ExperimentCheckException e)
            {
                foreach (var error in e.Errors) Console.Error.WriteLine(error);
                failures++;
            }
            catch (ExperimentRunException e) { Console.Error.WriteLine(e.Message); failures++; }
        }
        if (pending.Length > 0)
        {
            Console.Error.WriteLine("lens repl: the input ended inside an unclosed block");
            failures++;
        }
        // Interactive sessions always end well; piped ones say whether every statement ran.
        return interactive || failures == 0 ? CliRunner.Ok : CliRunner.Failed;
    }
}
