namespace Lens.Dsl;

/// <summary>What the splitter finds next: a statement header (on one line), or the `}` closing a block.</summary>
internal abstract record SplitEvent;

/// <param name="Line">0-based line index.</param>
/// <param name="Start">0-based index of the statement's first character.</param>
/// <param name="End">0-based index just past the header (where `;`, `#`, `{`, `}` or the line end stands).</param>
/// <param name="OpensBlock">Whether a `{` at <paramref name="End"/> opens a block that belongs to this
/// statement.</param>
internal sealed record HeaderEvent(int Line, int Start, int End, bool OpensBlock) : SplitEvent;

/// <param name="Line">0-based line index of the `}`.</param>
/// <param name="Index">0-based index of the `}`.</param>
internal sealed record BlockEndEvent(int Line, int Index) : SplitEvent;

/// <summary>
/// The first stage of parsing: cuts the text into statements at `;`, line breaks and block braces, skipping
/// comments and blank lines and stepping over string literals, so that each statement's header can be given to
/// the grammar on its own and errors point into the right line. Lazy, so that errors surface in file order.
/// </summary>
internal sealed class StatementSplitter(string file, IReadOnlyList<string> lines)
{
    private int line;
    private int index;

    private string Text => lines[line];

    private bool AtEndOfFile => line == lines.Count - 1 && index >= Text.Length;

    public IEnumerable<SplitEvent> Split()
    {
        var open = new Stack<(int Line, int Index)>();
        while (true)
        {
            SkipBlank();
            if (AtEndOfFile)
            {
                if (open.TryPeek(out var o))
                    throw Errors.At(file, lines, o.Line, o.Index,
                        "this '{' is never closed; expected '}' before the end of the file", ["'}'"]);
                yield break;
            }
            switch (Text[index])
            {
                case '}':
                    if (!open.TryPop(out _))
                        throw Errors.At(file, lines, line, index, "unexpected '}': there is no open block to close",
                            ["a command"]);
                    var close = new BlockEndEvent(line, index);
                    index = SourceText.SkipSpaces(Text, index + 1);
                    if (index < Text.Length && Text[index] is not (';' or '#' or '}'))
                        throw Errors.At(file, lines, line, index,
                            $"expected ';' or a new line after the block's '}}', " +
                            $"found {SourceText.Describe(Text, index)}", ["';'", "a new line"]);
                    yield return close;
                    break;
                case '{':
                    throw Errors.At(file, lines, line, index,
                        "a block must follow a command, as in 'ablate L1H4 { loss }'", ["a command"]);
                default:
                    var header = Header();
                    if (header.OpensBlock)
                    {
                        if (open.Count >= Limits.NestingDepth)
                            throw Errors.At(file, lines, line, index,
                                $"blocks nested more than {Limits.NestingDepth} deep; the limit " +
                                $"is {Limits.NestingDepth}", ["fewer nested blocks"]);
                        open.Push((line, index));
                        index++;
                    }
                    yield return header;
                    break;
            }
        }
    }

    /// <summary>Skips blanks, `;`, comments and line breaks.</summary>
    private void SkipBlank()
    {
        while (true)
        {
            if (index >= Text.Length)
            {
                if (line == lines.Count - 1) return;
                line++;
                index = 0;
            }
            else if (SourceText.IsSpace(Text[index]) || Text[index] == ';') index++;
            else if (Text[index] == '#') index = Text.Length;
            else return;
        }
    }

    private HeaderEvent Header()
    {
        var start = index;
        while (index < Text.Length && Text[index] is not (';' or '#' or '{' or '}'))
        {
            if (Text[index] == '"') SkipString();
            else index++;
        }
        return new HeaderEvent(line, start, index, index < Text.Length && Text[index] == '{');
    }

    private void SkipString()
    {
        var open = index;
        index++;
        while (index < Text.Length)
        {
            if (Text[index] == '\\') index += 2;
            else if (Text[index++] == '"') return;
        }
        throw Errors.At(file, lines, line, open,
            "unterminated string; expected a closing '\"' before the end of the line", ["'\"'"]);
    }
}
