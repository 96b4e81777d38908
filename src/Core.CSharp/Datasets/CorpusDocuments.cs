using System.Text;
using System.Text.Json;

namespace Lens.Datasets;

/// <summary>
/// The documents of a text corpus, in a fixed order, as Hugging Face <c>datasets</c> loads them: a <c>.txt</c> file
/// is one document per line (the "text" builder: Python's <c>str.splitlines</c>, blank lines kept as empty
/// documents); a folder is its <c>.txt</c> files in ordinal name order, each read the same way; a <c>.jsonl</c>
/// file is one JSON object per line whose <c>text</c> field is the document.
/// </summary>
public static class CorpusDocuments
{
    /// <summary>The files read, in order: the file itself, or a folder's .txt files sorted by ordinal name.</summary>
    public static IReadOnlyList<string> Files(string path)
    {
        if (Directory.Exists(path))
        {
            var files = Directory.EnumerateFiles(path, "*.txt").Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new HarvestException($"--corpus '{path}': the folder holds no .txt files");
            return files;
        }
        if (!File.Exists(path)) throw new HarvestException($"--corpus '{path}': no such file or folder");
        return [path];
    }

    public static IEnumerable<string> Read(string path)
    {
        foreach (var file in Files(path))
        {
            if (file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
                foreach (var doc in JsonLines(file)) yield return doc;
            else
                foreach (var line in Lines(File.ReadAllText(file, Encoding.UTF8))) yield return line;
        }
    }

    static IEnumerable<string> JsonLines(string file)
    {
        int number = 0;
        foreach (var line in File.ReadLines(file, Encoding.UTF8))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string? text;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object
                    || !doc.RootElement.TryGetProperty("text", out var field))
                    throw new HarvestException($"--corpus '{file}', line {number}: no \"text\" field (each line must " +
                        $"be a JSON object with a \"text\" string)");
                if (field.ValueKind != JsonValueKind.String)
                    throw new HarvestException($"--corpus '{file}', line {number}: \"text\" " +
                        $"is {field.ValueKind.ToString().ToLowerInvariant()}, not a string");
                text = field.GetString();
            }
            catch (JsonException e)
            {
                throw new HarvestException($"--corpus '{file}', line {number}: not valid JSON ({e.Message})");
            }
            yield return text!;
        }
    }

    /// <summary>
    /// Python's <c>str.splitlines()</c> after universal-newline reading: lines end at \n, \r\n, \r, \v, \f, \x1c,
    /// \x1d, \x1e, \x85, \u2028, \u2029; a final line ending adds no empty line.
    /// </summary>
    public static IEnumerable<string> Lines(string text)
    {
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')
            {
                yield return text[start..i];
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                start = i + 1;
            }
        }
        if (start < text.Length) yield return text[start..];
    }
}
