using System.Collections;
using System.Runtime.CompilerServices;

namespace Lens.Dsl;

/// <summary>
/// An immutable list that compares by its elements, so that records holding lists compare by value
/// (a plain IReadOnlyList member would compare by reference). Supports C# list patterns and collection expressions.
/// </summary>
[CollectionBuilder(typeof(NodeList), nameof(NodeList.Create))]
public sealed class NodeList<T> : IReadOnlyList<T>, IEquatable<NodeList<T>>
{
    private readonly T[] items;

    public static readonly NodeList<T> Empty = new([]);

    public NodeList(IEnumerable<T> items) => this.items = items.ToArray();

    public int Count => items.Length;

    public T this[int index] => items[index];

    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => items.GetEnumerator();

    public bool Equals(NodeList<T>? other) =>
        other is not null
            && (ReferenceEquals(this, other) || items.AsSpan().SequenceEqual(other.items, EqualityComparer<T>.Default));

    public override bool Equals(object? obj) => obj is NodeList<T> other && Equals(other);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in items) hash.Add(item);
        return hash.ToHashCode();
    }

    public override string ToString() => "[" + string.Join(", ", items) + "]";

    public static bool operator ==(NodeList<T>? left, NodeList<T>? right) =>
        left is null ? right is null : left.Equals(right);

    public static bool operator !=(NodeList<T>? left, NodeList<T>? right) => !(left == right);
}

/// <summary>Constructors for <see cref="NodeList{T}"/>.</summary>
public static class NodeList
{
    public static NodeList<T> Create<T>(ReadOnlySpan<T> items) => new(items.ToArray());

    public static NodeList<T> Of<T>(params T[] items) => new(items);

    public static NodeList<T> From<T>(IEnumerable<T> items) => new(items);
}
