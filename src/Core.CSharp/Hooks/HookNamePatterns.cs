using System.Text.RegularExpressions;

namespace Lens;

/// <summary>
/// A names filter made of globs (<c>blocks.*.attn.hook_pattern</c>, * within one dotted part) or
/// shorthand names, kept as patterns so that each one can be checked against the model's hook points.
/// </summary>
public sealed class HookNamePatterns
{
    readonly (string Pattern, Regex Regex)[] _patterns;

    public HookNamePatterns(IEnumerable<string> patterns) =>
        _patterns = patterns.Select(p => (p, new Regex("^" + (p.Contains('*')
            ? Regex.Escape(p).Replace("\\*", "[^.]*")
            : Regex.Escape(ActName.Get(p))) + "$"))).ToArray();

    public IEnumerable<(string Pattern, Func<string, bool> Matches)> Patterns =>
        _patterns.Select(p => (p.Pattern, (Func<string, bool>)p.Regex.IsMatch));

    public bool IsMatch(string name) => _patterns.Any(p => p.Regex.IsMatch(name));
}
