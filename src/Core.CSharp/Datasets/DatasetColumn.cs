using Apache.Arrow;
using Apache.Arrow.Types;
using System.Text.Json.Serialization;

namespace Lens.Datasets;

/// <summary>
/// One column of an activation dataset: its name (<c>token_ids</c> or a hook's full TransformerLens name), the
/// shape of one row ([context] for token ids, the hook's shape without the batch dimension for activations) and
/// its value type (int64, float32, float16), stored as nested fixed-size lists as <c>datasets</c>'
/// <c>List(..., length=n)</c> features are.
/// </summary>
public sealed record DatasetColumn(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("shape")] int[] Shape,
    [property: JsonPropertyName("dtype")] string Dtype)
{
    [JsonIgnore]
    public int ValuesPerRow => Shape.Aggregate(1, (a, b) => checked(a * b));

    [JsonIgnore]
    public int ElementSize => Dtype switch
    {
        "int64" => 8,
        "float32" => 4,
        "float16" => 2,
        _ => throw new HarvestException($"column '{Name}': dtype {Dtype} is not stored")
    };

    [JsonIgnore]
    public long BytesPerRow => (long)ValuesPerRow * ElementSize;

    IArrowType ValueType => Dtype switch
    {
        "int64" => Int64Type.Default,
        "float32" => FloatType.Default,
        "float16" => HalfFloatType.Default,
        _ => throw new HarvestException($"column '{Name}': dtype {Dtype} is not stored"),
    };

    [JsonIgnore]
    public IArrowType ArrowType
    {
        get
        {
            IArrowType type = ValueType;
            for (int i = Shape.Length - 1; i >= 0; i--) type = new FixedSizeListType(type, Shape[i]);
            return type;
        }
    }

    [JsonIgnore]
    public Field Field => new(Name, ArrowType, nullable: true);

    /// <summary>The column's <c>datasets</c> feature as Python's json.dumps writes it (asdict: defaults left out,
    /// <c>_type</c> last).</summary>
    public string FeatureJson()
    {
        var json = $"{{\"dtype\": \"{Dtype}\", \"_type\": \"Value\"}}";
        for (int i = Shape.Length - 1; i >= 0; i--)
            json = $"{{\"feature\": {json}, \"length\": {Shape[i]}, \"_type\": \"List\"}}";
        return json;
    }

    /// <summary>An Arrow array of <paramref name="rows"/> rows over the flat little-endian
    /// <paramref name="values"/>.</summary>
    public IArrowArray Array(ReadOnlyMemory<byte> values, int rows)
    {
        var data =
            new ArrayData(ValueType, rows * ValuesPerRow, 0, 0, [ArrowBuffer.Empty, new ArrowBuffer(values)], []);
        int length = rows * ValuesPerRow;
        for (int i = Shape.Length - 1; i >= 0; i--)
        {
            length /= Shape[i];
            data = new ArrayData(new FixedSizeListType(data.DataType, Shape[i]), length, 0, 0, [ArrowBuffer.Empty],
                [data]);
        }
        return ArrowArrayFactory.BuildArray(data);
    }
}
