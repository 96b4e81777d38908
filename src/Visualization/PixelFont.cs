namespace Lens.Visualization;

/// <summary>
/// A 5x7 bitmap font for PNG labels (digits, A-Z, common punctuation; lower case is drawn upper
/// case, anything else as '?'), so the PNG export needs no font library. Each glyph is 7 rows of
/// 5 pixels, '#' for ink.
/// </summary>
internal static class PixelFont
{
    public const int GlyphWidth = 5, GlyphHeight = 7, Advance = 6;

    static readonly Dictionary<char, string[]> Glyphs = new()
    {
        ['0'] = G(".###. #...# #..## #.#.# ##..# #...# .###."),
        ['1'] = G("..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."),
        ['2'] = G(".###. #...# ....# ...#. ..#.. .#... #####"),
        ['3'] = G("##### ...#. ..#.. ...#. ....# #...# .###."),
        ['4'] = G("...#. ..##. .#.#. #..#. ##### ...#. ...#."),
        ['5'] = G("##### #.... ####. ....# ....# #...# .###."),
        ['6'] = G("..##. .#... #.... ####. #...# #...# .###."),
        ['7'] = G("##### ....# ...#. ..#.. .#... .#... .#..."),
        ['8'] = G(".###. #...# #...# .###. #...# #...# .###."),
        ['9'] = G(".###. #...# #...# .#### ....# ...#. .##.."),
        ['A'] = G(".###. #...# #...# ##### #...# #...# #...#"),
        ['B'] = G("####. #...# #...# ####. #...# #...# ####."),
        ['C'] = G(".###. #...# #.... #.... #.... #...# .###."),
        ['D'] = G("####. #...# #...# #...# #...# #...# ####."),
        ['E'] = G("##### #.... #.... ####. #.... #.... #####"),
        ['F'] = G("##### #.... #.... ####. #.... #.... #...."),
        ['G'] = G(".###. #...# #.... #.### #...# #...# .####"),
        ['H'] = G("#...# #...# #...# ##### #...# #...# #...#"),
        ['I'] = G(".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
        ['J'] = G("..### ...#. ...#. ...#. ...#. #..#. .##.."),
        ['K'] = G("#...# #..#. #.#.. ##... #.#.. #..#. #...#"),
        ['L'] = G("#.... #.... #.... #.... #.... #.... #####"),
        ['M'] = G("#...# ##.## #.#.# #.#.# #...# #...# #...#"),
        ['N'] = G("#...# #...# ##..# #.#.# #..## #...# #...#"),
        ['O'] = G(".###. #...# #...# #...# #...# #...# .###."),
        ['P'] = G("####. #...# #...# ####. #.... #.... #...."),
        ['Q'] = G(".###. #...# #...# #...# #.#.# #..#. .##.#"),
        ['R'] = G("####. #...# #...# ####. #.#.. #..#. #...#"),
        ['S'] = G(".#### #.... #.... .###. ....# ....# ####."),
        ['T'] = G("##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
        ['U'] = G("#...# #...# #...# #...# #...# #...# .###."),
        ['V'] = G("#...# #...# #...# #...# #...# .#.#. ..#.."),
        ['W'] = G("#...# #...# #...# #.#.# #.#.# #.#.# .#.#."),
        ['X'] = G("#...# #...# .#.#. ..#.. .#.#. #...# #...#"),
        ['Y'] = G("#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."),
        ['Z'] = G("##### ....# ...#. ..#.. .#... #.... #####"),
        [' '] = G("..... ..... ..... ..... ..... ..... ....."),
        ['.'] = G("..... ..... ..... ..... ..... .##.. .##.."),
        [','] = G("..... ..... ..... ..... .##.. ..#.. .#..."),
        ['-'] = G("..... ..... ..... ##### ..... ..... ....."),
        ['+'] = G("..... ..#.. ..#.. ##### ..#.. ..#.. ....."),
        [':'] = G("..... .##.. .##.. ..... .##.. .##.. ....."),
        ['_'] = G("..... ..... ..... ..... ..... ..... #####"),
        ['/'] = G("....# ....# ...#. ..#.. .#... #.... #...."),
        ['('] = G("...#. ..#.. .#... .#... .#... ..#.. ...#."),
        [')'] = G(".#... ..#.. ...#. ...#. ...#. ..#.. .#..."),
        ['['] = G(".###. .#... .#... .#... .#... .#... .###."),
        [']'] = G(".###. ...#. ...#. ...#. ...#. ...#. .###."),
        ['%'] = G("##... ##..# ...#. ..#.. .#... #..## ...##"),
        ['='] = G("..... ..... ##### ..... ##### ..... ....."),
        ['<'] = G("...#. ..#.. .#... #.... .#... ..#.. ...#."),
        ['>'] = G(".#... ..#.. ...#. ....# ...#. ..#.. .#..."),
        ['*'] = G("..... ..#.. #.#.# .###. #.#.# ..#.. ....."),
        ['!'] = G("..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."),
        ['?'] = G(".###. #...# ....# ...#. ..#.. ..... ..#.."),
        ['\''] = G("..#.. ..#.. .#... ..... ..... ..... ....."),
        ['#'] = G(".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."),
    };

    static string[] G(string rows) => rows.Split(' ');

    static string[] GlyphFor(char c) =>
        Glyphs.TryGetValue(char.ToUpperInvariant(c), out var g) ? g : Glyphs['?'];

    /// <summary>Width in pixels of <paramref name="text"/> drawn at <paramref name="scale"/>.</summary>
    public static int Width(string text, int scale) => text.Length == 0 ? 0 : (text.Length * Advance - 1) * scale;

    public static int Height(int scale) => GlyphHeight * scale;

    /// <summary>Draws left to right with the top-left corner at (x, y).</summary>
    public static void Draw(RgbImage img, string text, int x, int y, int scale, Rgb color)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var g = GlyphFor(text[i]);
            for (var row = 0; row < GlyphHeight; row++)
                for (var col = 0; col < GlyphWidth; col++)
                    if (g[row][col] == '#')
                        img.Fill(x + (i * Advance + col) * scale, y + row * scale, scale, scale, color);
        }
    }

    /// <summary>Draws bottom to top (rotated a quarter turn anticlockwise) starting at (x, yBottom), glyph tops facing
    /// left.</summary>
    public static void DrawUp(RgbImage img, string text, int x, int yBottom, int scale, Rgb color)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var g = GlyphFor(text[i]);
            for (var row = 0; row < GlyphHeight; row++)
                for (var col = 0; col < GlyphWidth; col++)
                    if (g[row][col] == '#')
                        img.Fill(x + row * scale, yBottom - (i * Advance + col + 1) * scale, scale, scale, color);
        }
    }
}
