using System.Globalization;
using System.Text.Json;

namespace Lens.Dsl.Runtime;

/// <summary>Number formatting shared by the JSON, the terminal and the report.</summary>
public static class Numbers
{
    /// <summary>A float32 result as the double with the same shortest text (0.96038467, not
    /// 0.9603846669197083).</summary>
    public static double FromFloat(float value) =>
        float.IsFinite(value)
            ? double.Parse(value.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture)
            : value;

    /// <summary>A number in JSON; NaN and infinities (which JSON cannot hold) as null.</summary>
    public static void Write(Utf8JsonWriter writer, double value)
    {
        if (double.IsFinite(value)) writer.WriteNumberValue(value);
        else writer.WriteNullValue();
    }

    /// <summary>For tables: 4 decimals, or 4 significant digits for tiny and huge values.</summary>
    public static string Text(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        var magnitude = Math.Abs(value);
        return magnitude != 0 && (magnitude < 1e-3 || magnitude >= 1e6)
            ? value.ToString("0.###e+0", CultureInfo.InvariantCulture)
            : value.ToString("0.0000", CultureInfo.InvariantCulture);
    }

    /// <summary>A jagged double grid as a float grid (for the visualisation API).</summary>
    public static float[,] ToFloatGrid(double[][] values)
    {
        int rows = values.Length, cols = rows == 0 ? 0 : values[0].Length;
        var grid = new float[rows, cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) grid[r, c] = (float)values[r][c];
        return grid;
    }
}
