using System.Collections;
using System.Collections.Concurrent;
using System.Reflection;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Lens.Dsl;

/// <summary>
/// JSON of the AST, so that a run can record exactly what it did. Every node is an object whose first
/// property is "$type" (the record's name), followed by its properties in declaration order (camelCase);
/// a statement ends with its "span". Enums are written as the language's keywords, lists as arrays.
/// The order is fixed by the record declarations, so the same AST always gives the same text.
/// </summary>
public static class AstJson
{
    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> PropertyCache = new();

    public static string Serialize(Statement statement, bool indented = false) =>
        Write(w => WriteNode(w, statement), indented);

    public static string Serialize(Script script, bool indented = false) => Write(w => WriteNode(w, script), indented);

    /// <summary>An intervention on its own (what a run records as applied).</summary>
    public static string Serialize(Intervention intervention, bool indented = false) =>
        Write(w => WriteNode(w, intervention), indented);

    private static string Write(Action<Utf8JsonWriter> write, bool indented)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream,
            new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(writer);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case int i: writer.WriteNumberValue(i); break;
            case long l: writer.WriteNumberValue(l); break;
            case double d: writer.WriteNumberValue(d); break;
            case Enum e: writer.WriteStringValue(Keywords.Text(e)); break;
            case SourceSpan span: WriteNode(writer, span, typed: false); break;
            case IEnumerable list:
                writer.WriteStartArray();
                foreach (var item in list) WriteValue(writer, item);
                writer.WriteEndArray();
                break;
            default: WriteNode(writer, value); break;
        }
    }

    /// <param name="typed">Whether the object starts with "$type" (every node but a span).</param>
    private static void WriteNode(Utf8JsonWriter writer, object node, bool typed = true)
    {
        writer.WriteStartObject();
        if (typed) writer.WriteString("$type", node.GetType().Name);
        foreach (var property in PropertiesOf(node.GetType()))
        {
            writer.WritePropertyName(JsonNamingPolicy.CamelCase.ConvertName(property.Name));
            WriteValue(writer, property.GetValue(node));
        }
        writer.WriteEndObject();
    }

    /// <summary>Public properties, the record's own first in declaration order, then inherited ones, the span
    /// last.</summary>
    private static PropertyInfo[] PropertiesOf(Type type) => PropertyCache.GetOrAdd(type, t =>
        t.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.GetIndexParameters().Length == 0)
            .OrderBy(p => p.Name == nameof(Statement.Span) ? 2 : p.DeclaringType == t ? 0 : 1)
            .ThenBy(p => p.MetadataToken)
            .ToArray());
}
