namespace Lens.Analysis;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014;
/// Vigna's reference splitmix64.c): state += 0x9E3779B97F4A7C15; z = state;
/// z = (z ^ (z &gt;&gt; 30)) · 0xBF58476D1CE4E5B9; z = (z ^ (z &gt;&gt; 27)) · 0x94D049BB133111EB; output z ^ (z
/// &gt;&gt; 31). Lens uses it wherever a result depends on random draws, so the same seed gives the same draws on
/// every machine and .NET version (System.Random's algorithm is not part of its contract).
/// Seeded with 0 its first outputs are 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F.
/// </summary>
public sealed class SplitMix64(ulong seed)
{
    ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// A uniform integer in [0, bound), without modulo bias: draws below 2^64 mod bound are rejected
    /// and drawn again, then the draw is reduced mod bound.
    /// </summary>
    public long NextBelow(long bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound), $"bound must be positive, got {bound}");
        ulong b = (ulong)bound;
        ulong threshold = (0UL - b) % b;
        while (true)
        {
            ulong r = NextUInt64();
            if (r >= threshold) return (long)(r % b);
        }
    }
}
