using ParetoPrune.Devices.Energy;

namespace ParetoPrune.Devices.Meters;

/// <summary>The CLI's <c>--meter SPEC</c>: which energy meter to open.</summary>
public static class MeterSpec
{
    public const string AcceptedForms =
        "ina2xx[:NAME][@ROOT] (INA2xx sensor over hwmon; NAME a chip like ina260 or a hwmonN directory, ROOT default /sys/class/hwmon), " +
        "um24c:DEVICE, um25c:DEVICE, um34c:DEVICE (RDTech USB meter on a serial device, e.g. um25c:/dev/rfcomm0), " +
        "rapl[@ROOT] (x86 package energy, ROOT default /sys/class/powercap), " +
        "none (no energy measurement)";

    /// <summary>Opens the meter a spec names; null for "none".</summary>
    /// <exception cref="FormatException">The spec is not one of <see cref="AcceptedForms"/>.</exception>
    /// <exception cref="EnergyUnavailableException">The meter named is not there or cannot be read.</exception>
    /// <exception cref="IOException">A USB meter's serial device cannot be opened.</exception>
    public static IEnergyMeter? Parse(string spec)
    {
        var s = spec.Trim();
        var kindEnd = s.IndexOfAny([':', '@']);
        var kind = (kindEnd < 0 ? s : s[..kindEnd]).ToLowerInvariant();
        var rest = kindEnd < 0 ? "" : s[kindEnd..];
        switch (kind)
        {
            case "none" when rest.Length == 0:
                return null;
            case "ina2xx":
            {
                var (arg, root) = SplitRoot(rest, Ina2xxHwmonMeter.DefaultRoot, spec);
                if (arg is not null && arg.Length == 0)
                    throw Invalid(spec, "the sensor name after ':' is empty");
                return new SampledEnergyMeter(Ina2xxHwmonMeter.Find(arg, root));
            }
            case "rapl":
            {
                var (arg, root) = SplitRoot(rest, RaplEnergyMeter.DefaultRoot, spec);
                if (arg is not null)
                    throw Invalid(spec, "rapl takes no ':NAME'");
                return RaplEnergyMeter.Open(root);
            }
            case "um24c" or "um25c" or "um34c":
            {
                if (!rest.StartsWith(':') || rest.Length == 1)
                    throw Invalid(spec, $"{kind} needs the serial device, e.g. {kind}:/dev/rfcomm0");
                var model = Enum.Parse<UsbMeterModel>(kind, ignoreCase: true);
                return new SampledEnergyMeter(new UsbMeter(model, rest[1..]));
            }
            default:
                throw Invalid(spec, null);
        }
    }

    /// <summary>Splits ":ARG@ROOT", ":ARG", "@ROOT" or "" into the argument (null if absent) and the root.</summary>
    private static (string? Arg, string Root) SplitRoot(string rest, string defaultRoot, string spec)
    {
        var at = rest.IndexOf('@');
        var root = at < 0 ? defaultRoot : rest[(at + 1)..];
        if (root.Length == 0)
            throw Invalid(spec, "the directory after '@' is empty");
        var arg = at < 0 ? rest : rest[..at];
        return (arg.Length == 0 ? null : arg[1..], root);
    }

    private static FormatException Invalid(string spec, string? why) =>
        new($"Invalid --meter '{spec}'{(why is null ? "" : $": {why}")}. Accepted forms: {AcceptedForms}.");
}
