namespace Lens.Dsl.Runtime;

/// <summary>One attention head: layer and head index, ordered by layer then head.</summary>
public readonly record struct HeadRef(int Layer, int Head) : IComparable<HeadRef>
{
    public string Label => $"L{Layer}H{Head}";

    public int CompareTo(HeadRef other) =>
        Layer != other.Layer ? Layer.CompareTo(other.Layer) : Head.CompareTo(other.Head);

    public override string ToString() => Label;
}
