namespace ParetoPrune.Objectives;

/// <summary>Units a bound may be written in, each with its factor into the objective's own unit.</summary>
static class QuantityUnits
{
    // KB, MB, GB are decimal (SI); KiB, MiB, GiB binary. Case matters: M is mega, m is milli.
    static readonly Dictionary<string, (Quantity Quantity, double Factor)> Units = new(StringComparer.Ordinal)
    {
        ["%"] = (Quantity.Fraction, 0.01),
        ["k"] = (Quantity.Count, 1e3), ["K"] = (Quantity.Count, 1e3), ["M"] = (Quantity.Count, 1e6), ["G"] = (Quantity.Count, 1e9),
        ["B"] = (Quantity.Bytes, 1), ["bytes"] = (Quantity.Bytes, 1),
        ["KB"] = (Quantity.Bytes, 1e3), ["kB"] = (Quantity.Bytes, 1e3), ["KiB"] = (Quantity.Bytes, 1024),
        ["MB"] = (Quantity.Bytes, 1e6), ["MiB"] = (Quantity.Bytes, 1 << 20),
        ["GB"] = (Quantity.Bytes, 1e9), ["GiB"] = (Quantity.Bytes, 1 << 30),
        ["ms"] = (Quantity.Time, 1), ["s"] = (Quantity.Time, 1e3), ["us"] = (Quantity.Time, 1e-3),
        ["µs"] = (Quantity.Time, 1e-3), ["μs"] = (Quantity.Time, 1e-3), ["ns"] = (Quantity.Time, 1e-6),
        ["mJ"] = (Quantity.Energy, 1), ["J"] = (Quantity.Energy, 1e3), ["uJ"] = (Quantity.Energy, 1e-3),
        ["µJ"] = (Quantity.Energy, 1e-3), ["μJ"] = (Quantity.Energy, 1e-3),
    };

    public static bool TryGet(string unit, out Quantity quantity, out double factor)
    {
        bool found = Units.TryGetValue(unit, out var u);
        (quantity, factor) = u;
        return found;
    }

    /// <summary>How to write a value of this quantity, for error messages.</summary>
    public static string Help(Quantity quantity) => quantity switch
    {
        Quantity.Fraction => "a fraction or a percentage (0.9 or 90%)",
        Quantity.Count => "a plain number or one with k, M or G (300M)",
        Quantity.Bytes => "bytes: B, KB, KiB, MB, MiB, GB or GiB (2 MiB)",
        Quantity.Time => "a time in ms, s or us (20 ms)",
        _ => "an energy in mJ, J or uJ (50 mJ)",
    };
}
