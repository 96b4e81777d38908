using System.Reflection;

namespace Lens.Visualization;

/// <summary>
/// Shows <see cref="HtmlContent"/> as HTML in .NET Interactive (Polyglot Notebooks, Jupyter with the
/// .NET kernel).
/// </summary>
/// <remarks>
/// How it works: a notebook kernel renders a cell's value with the formatters registered in the
/// static class <c>Microsoft.DotNet.Interactive.Formatting.Formatter</c>, which lives in the
/// Microsoft.DotNet.Interactive.Formatting assembly the kernel has already loaded. Lens does not
/// reference that package; <see cref="Register"/> looks for the assembly among those loaded in the
/// process and, when found, calls through reflection
/// <c>Formatter.Register(typeof(HtmlContent), (value, writer) =&gt; writer.Write(html), "text/html")</c>
/// and <c>Formatter.SetPreferredMimeTypesFor(typeof(HtmlContent), "text/html")</c>, which is what a
/// notebook user would type. The kernel then writes the HTML into the output cell, where its inline
/// scripts run. Outside a notebook nothing is loaded and Register does nothing.
/// In a notebook:
/// <code>
/// #r "Lens.Core.dll"
/// #r "Lens.Visualization.dll"
/// Lens.Visualization.Notebook.Register();
/// Lens.Visualization.AttentionPatterns.RenderFragment(tokens, pattern, names)   // displayed as HTML
/// </code>
/// </remarks>
public static class Notebook
{
    const string AssemblyName = "Microsoft.DotNet.Interactive.Formatting";
    const string FormatterType = "Microsoft.DotNet.Interactive.Formatting.Formatter";
    static readonly HashSet<Type> Registered = [];

    /// <summary>Registers the HTML formatter when running in .NET Interactive; returns whether it did.</summary>
    public static bool Register()
    {
        var formatter = AppDomain.CurrentDomain.GetAssemblies()
            .Where(a => a.GetName().Name == AssemblyName)
            .Select(a => a.GetType(FormatterType, throwOnError: false))
            .FirstOrDefault(t => t is not null);
        return formatter is not null && RegisterWith(formatter);
    }

    /// <summary>Registers with a given Formatter type (the real one, or a stand-in in tests).</summary>
    internal static bool RegisterWith(Type formatter)
    {
        lock (Registered)
        {
            if (Registered.Contains(formatter)) return true;
            const BindingFlags flags = BindingFlags.Public | BindingFlags.Static;
            var register = formatter.GetMethod("Register", flags,
                [typeof(Type), typeof(Action<object, TextWriter>), typeof(string)]);
            if (register is null) return false;
            Action<object, TextWriter> write = (value, writer) => writer.Write(((HtmlContent)value).Html);
            register.Invoke(null, [typeof(HtmlContent), write, "text/html"]);
            formatter.GetMethod("SetPreferredMimeTypesFor", flags, [typeof(Type), typeof(string[])])
                ?.Invoke(null, [typeof(HtmlContent), new[] { "text/html" }]);
            Registered.Add(formatter);
            return true;
        }
    }
}
