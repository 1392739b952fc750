using System.Globalization;
using System.Text.RegularExpressions;
using ParetoPrune.Devices.Energy;

namespace ParetoPrune.Devices.Meters;

/// <summary>
/// An INA2xx current/power sensor (INA219, INA226, INA230, INA231, INA260, ...) read through the Linux hwmon
/// sysfs files of the ina2xx driver: <c>power1_input</c> in µW when present, otherwise bus voltage
/// <c>in1_input</c> (mV) × current <c>curr1_input</c> (mA).
/// </summary>
public sealed partial class Ina2xxHwmonMeter : IPowerMeter
{
    public const string DefaultRoot = "/sys/class/hwmon";

    /// <summary>Used when the driver has no <c>update_interval</c> (the INA219 has none).</summary>
    public static readonly TimeSpan DefaultSampleInterval = TimeSpan.FromMilliseconds(10);

    private readonly string? _powerFile;
    private readonly string? _voltageFile;
    private readonly string? _currentFile;

    /// <summary>Opens the sensor at one hwmon directory (e.g. /sys/class/hwmon/hwmon2).</summary>
    /// <exception cref="EnergyUnavailableException">The directory is not an INA2xx sensor with power or voltage and current files.</exception>
    public Ina2xxHwmonMeter(string hwmonDirectory)
    {
        Directory = hwmonDirectory;
        var chip = ReadChipName(hwmonDirectory)
            ?? throw new EnergyUnavailableException($"{Path.Combine(hwmonDirectory, "name")}: not found, so {hwmonDirectory} is not a hwmon device.");
        if (!IsIna(chip))
            throw new EnergyUnavailableException($"{hwmonDirectory} is '{chip}', not an INA2xx power sensor.");
        Chip = chip;

        string source;
        var power = Path.Combine(hwmonDirectory, "power1_input");
        if (File.Exists(power))
        {
            _powerFile = power;
            source = "power1_input";
        }
        else
        {
            var volts = Path.Combine(hwmonDirectory, "in1_input");
            var amps = Path.Combine(hwmonDirectory, "curr1_input");
            if (!File.Exists(volts) || !File.Exists(amps))
                throw new EnergyUnavailableException(
                    $"{hwmonDirectory} ({chip}) has neither power1_input nor both in1_input and curr1_input.");
            (_voltageFile, _currentFile) = (volts, amps);
            source = "in1_input × curr1_input";
        }

        var interval = Path.Combine(hwmonDirectory, "update_interval");
        var ms = File.Exists(interval) ? ReadInteger(interval) : 0;
        SampleInterval = ms > 0 ? TimeSpan.FromMilliseconds(ms) : DefaultSampleInterval;
        // The driver scales current and power by the shunt it is told about (10 mΩ unless set), while INA219/INA226
        // breakouts usually carry 0.1 Ω: a wrong value reads 10× off, so every figure names the shunt it assumed.
        var shunt = Path.Combine(hwmonDirectory, "shunt_resistor");
        string shuntText = File.Exists(shunt) ? $", shunt {ReadInteger(shunt) / 1000.0:0.###} mΩ" : "";
        Name = $"{chip.ToUpperInvariant()} via {Path.GetFileName(Path.TrimEndingDirectorySeparator(hwmonDirectory))} " +
               $"({source}, {SampleInterval.TotalMilliseconds:0.#} ms{shuntText})";
    }

    /// <summary>The hwmon directory read from.</summary>
    public string Directory { get; }

    /// <summary>The driver's chip name, e.g. "ina260".</summary>
    public string Chip { get; }

    public string Name { get; }
    public TimeSpan SampleInterval { get; }

    public double ReadWatts()
    {
        if (_powerFile is not null)
            return ReadInteger(_powerFile) / 1e6;
        // The driver's power1_input is a magnitude; take the current's too, so a shunt wired the other way round
        // reads the same on both paths.
        return ReadInteger(_voltageFile!) * Math.Abs(ReadInteger(_currentFile!)) / 1e6;
    }

    /// <summary>
    /// Finds the INA2xx sensor under <paramref name="root"/> by the driver's <c>name</c> file (hwmon numbers change
    /// between boots). <paramref name="name"/> picks one by chip name ("ina260") or hwmon directory ("hwmon3")
    /// when there are several.
    /// </summary>
    /// <exception cref="EnergyUnavailableException">No root, no matching sensor, or several and no way to choose.</exception>
    public static Ina2xxHwmonMeter Find(string? name = null, string root = DefaultRoot)
    {
        if (!System.IO.Directory.Exists(root))
            throw new EnergyUnavailableException($"{root}: not found (no hwmon devices; is this Linux with sysfs mounted?).");

        // hwmonN entries are symlinks into /sys/devices; Directory.Exists follows them.
        List<(string Dir, string? Chip)> devices;
        try
        {
            devices = System.IO.Directory.EnumerateFileSystemEntries(root)
                .Where(System.IO.Directory.Exists)
                .Select(dir => (Dir: dir, Chip: ReadChipName(dir)))
                .Where(d => d.Chip is not null)
                .OrderBy(d => d.Dir, StringComparer.Ordinal)
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new EnergyUnavailableException($"{root}: cannot list the hwmon devices: {e.Message}");
        }
        var inas = devices.Where(d => IsIna(d.Chip!)).ToList();
        if (inas.Count == 0)
        {
            var found = devices.Count == 0 ? "none" : string.Join(", ", devices.Select(Describe));
            throw new EnergyUnavailableException($"No INA2xx power sensor under {root} (hwmon devices found: {found}).");
        }

        var matches = name is null
            ? inas
            : inas.Where(d => string.Equals(d.Chip, name, StringComparison.OrdinalIgnoreCase)
                              || string.Equals(Path.GetFileName(d.Dir), name, StringComparison.Ordinal)).ToList();
        if (matches.Count == 0)
            throw new EnergyUnavailableException(
                $"No INA2xx sensor named '{name}' under {root} (INA2xx sensors found: {string.Join(", ", inas.Select(Describe))}).");
        if (matches.Count > 1)
            throw new EnergyUnavailableException(
                $"Several INA2xx sensors under {root} ({string.Join(", ", matches.Select(Describe))}); " +
                "name one by chip or by hwmon directory, e.g. ina2xx:" +
                (name is null ? matches[0].Chip : Path.GetFileName(matches[0].Dir)) + ".");
        return new Ina2xxHwmonMeter(matches[0].Dir);
    }

    private static string Describe((string Dir, string? Chip) device) => $"{Path.GetFileName(device.Dir)}={device.Chip}";

    private static bool IsIna(string chip) => InaName().IsMatch(chip);

    // ina219/220/226/230/231/260 (ina2xx driver), ina209 and ina238 (own drivers, same file names). Not ina3221: it has
    // three channels and no power file.
    [GeneratedRegex("^ina2[0-9]{2}$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex InaName();

    private static string? ReadChipName(string dir)
    {
        var file = Path.Combine(dir, "name");
        try
        {
            return File.Exists(file) ? File.ReadAllText(file).Trim() : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long ReadInteger(string file)
    {
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{file}: cannot read ({e.Message})", e);
        }
        if (!long.TryParse(text.AsSpan().Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
            throw new InvalidDataException($"{file}: expected an integer, read '{text.Trim()}'.");
        return value;
    }
}
