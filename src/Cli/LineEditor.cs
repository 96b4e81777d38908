using System.Text;

namespace Lens.Cli;

/// <summary>
/// Reads lines at an interactive terminal with editing and history: left/right, Home/End, Backspace/Delete,
/// up/down through earlier lines, Ctrl+D (on an empty line) for end of input, Ctrl+C to drop the line.
/// When input is redirected (a pipe, a file) it is plain Console.ReadLine.
/// </summary>
sealed class LineEditor
{
    readonly List<string> history = [];

    public static bool Interactive => !Console.IsInputRedirected && !Console.IsOutputRedirected;

    /// <summary>The next line (without its line break), or null at the end of input.</summary>
    public string? ReadLine(string prompt)
    {
        if (!Interactive) return Console.ReadLine();
        Console.Write(prompt);
        var line = new StringBuilder();
        int cursor = 0, recalled = history.Count;
        string draft = "";
        void Redraw()
        {
            Console.Write("\r" + prompt + line + "\u001b[K");
            int back = line.Length - cursor;
            if (back > 0) Console.Write($"\u001b[{back}D");
        }
        void Replace(string text) { line.Clear().Append(text); cursor = line.Length; Redraw(); }
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            switch (key.Key)
            {
                case ConsoleKey.Enter:
                    Console.WriteLine();
                    var text = line.ToString();
                    if (text.Trim().Length > 0 && (history.Count == 0 || history[^1] != text)) history.Add(text);
                    return text;
                case ConsoleKey.Backspace when cursor > 0:
                    line.Remove(--cursor, 1); Redraw(); break;
                case ConsoleKey.Delete when cursor < line.Length:
                    line.Remove(cursor, 1); Redraw(); break;
                case ConsoleKey.LeftArrow when cursor > 0: cursor--; Redraw(); break;
                case ConsoleKey.RightArrow when cursor < line.Length: cursor++; Redraw(); break;
                case ConsoleKey.Home: cursor = 0; Redraw(); break;
                case ConsoleKey.End: cursor = line.Length; Redraw(); break;
                case ConsoleKey.UpArrow when recalled > 0:
                    if (recalled == history.Count) draft = line.ToString();
                    Replace(history[--recalled]); break;
                case ConsoleKey.DownArrow when recalled < history.Count:
                    recalled++;
                    Replace(recalled == history.Count ? draft : history[recalled]); break;
                case ConsoleKey.D when key.Modifiers.HasFlag(ConsoleModifiers.Control):
                    if (line.Length == 0) { Console.WriteLine(); return null; }
                    break;
                case ConsoleKey.C when key.Modifiers.HasFlag(ConsoleModifiers.Control):
                    Console.WriteLine("^C"); line.Clear(); cursor = 0; Console.Write(prompt); break;
                default:
                    if (!char.IsControl(key.KeyChar)) { line.Insert(cursor++, key.KeyChar); Redraw(); }
                    break;
            }
        }
    }
}
