using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.RegularExpressions;
using ParetoPrune.Devices.Energy;

namespace ParetoPrune.Devices.Meters;

/// <summary>
/// Package energy of an x86 host (Intel, and AMD through the same powercap names) from the RAPL counters
/// <c>intel-rapl:N/energy_uj</c>, read at both ends of a window and summed over the packages.
/// </summary>
public sealed partial class RaplEnergyMeter : IEnergyMeter
{
    public const string DefaultRoot = "/sys/class/powercap";

    private readonly Domain[] _domains;
    private readonly Func<string, string> _read;

    private RaplEnergyMeter(Domain[] domains, Func<string, string> read)
    {
        _domains = domains;
        _read = read;
        Name = $"RAPL package energy ({domains.Length} domain{(domains.Length == 1 ? "" : "s")})";
    }

    public string Name { get; }

    /// <summary>Opens the package domains, or says why not (absent, unreadable: root-only since Linux 5.10).</summary>
    public static bool TryOpen(string root, [NotNullWhen(true)] out RaplEnergyMeter? meter, [NotNullWhen(false)] out string? reason) =>
        TryOpen(root, File.ReadAllText, out meter, out reason);

    /// <exception cref="EnergyUnavailableException">The counters cannot be read; the message says why.</exception>
    public static RaplEnergyMeter Open(string root = DefaultRoot) =>
        TryOpen(root, out var meter, out var reason) ? meter : throw new EnergyUnavailableException(reason);

    /// <param name="read">Reads a whole file; injectable so that tests can produce errors a root test run cannot.</param>
    internal static bool TryOpen(string root, Func<string, string> read,
        [NotNullWhen(true)] out RaplEnergyMeter? meter, [NotNullWhen(false)] out string? reason)
    {
        meter = null;
        if (!Directory.Exists(root))
        {
            reason = $"{root}: not found (no powercap interface: not Linux, or not an x86 host).";
            return false;
        }
        // Package zones only: intel-rapl:N. Not the subzones intel-rapl:N:M (core, uncore, dram), which the
        // package already contains, nor intel-rapl-mmio:N, a second view of the same package counter.
        List<string> dirs;
        try
        {
            dirs = Directory.EnumerateFileSystemEntries(root)
                .Where(d => PackageZone().IsMatch(Path.GetFileName(d)) && Directory.Exists(d))
                .OrderBy(d => int.Parse(Path.GetFileName(d).AsSpan("intel-rapl:".Length), CultureInfo.InvariantCulture))
                .ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = $"{root}: cannot list the powercap zones: {e.Message}";
            return false;
        }
        if (dirs.Count == 0)
        {
            reason = $"{root}: no RAPL package domains (intel-rapl:N); the intel_rapl driver is not loaded or this is not an x86 host.";
            return false;
        }

        var domains = new List<Domain>();
        foreach (var dir in dirs)
        {
            var energy = Path.Combine(dir, "energy_uj");
            var range = Path.Combine(dir, "max_energy_range_uj");
            if (!TryReadMicrojoules(read, energy, out _, out reason) || !TryReadMicrojoules(read, range, out var max, out reason))
                return false;
            if (max <= 0)
            {
                reason = $"{range}: the counter range must be positive, read {max}.";
                return false;
            }
            domains.Add(new Domain(energy, max));
        }
        meter = new RaplEnergyMeter([.. domains], read);
        reason = null;
        return true;
    }

    public IEnergyWindow Start()
    {
        var start = Stopwatch.GetTimestamp();
        return new Window(this, start, ReadAll());
    }

    public void Dispose()
    {
        // Nothing held open: every reading opens its sysfs file.
    }

    /// <summary>Energy between two counter readings; one wrap-around at most is detectable.</summary>
    internal static long Delta(long before, long after, long range) => after >= before ? after - before : after + range - before;

    private long[] ReadAll()
    {
        var values = new long[_domains.Length];
        for (var i = 0; i < values.Length; i++)
            values[i] = TryReadMicrojoules(_read, _domains[i].EnergyFile, out var uj, out var reason)
                ? uj
                : throw new IOException(reason);
        return values;
    }

    private static bool TryReadMicrojoules(Func<string, string> read, string file, out long value, [NotNullWhen(false)] out string? reason)
    {
        value = 0;
        string text;
        try
        {
            text = read(file);
        }
        catch (UnauthorizedAccessException)
        {
            // .NET reports opening a directory as access denied too.
            reason = Directory.Exists(file)
                ? $"{file}: is a directory, not a counter file"
                : $"{file}: permission denied (root only since Linux 5.10)";
            return false;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            reason = $"{file}: not found";
            return false;
        }
        catch (IOException e)
        {
            reason = $"{file}: {e.Message}";
            return false;
        }
        if (!long.TryParse(text.AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out value))
        {
            reason = $"{file}: expected a count of microjoules, read '{text.Trim()}'";
            return false;
        }
        reason = null;
        return true;
    }

    [GeneratedRegex("^intel-rapl:[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex PackageZone();

    private sealed record Domain(string EnergyFile, long RangeMicrojoules);

    private sealed class Window(RaplEnergyMeter owner, long start, long[] before) : IEnergyWindow
    {
        private int _stopped;

        public EnergyReading Stop()
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0)
                throw new InvalidOperationException("This measurement window was already stopped.");
            var after = owner.ReadAll();
            var end = Stopwatch.GetTimestamp();
            // A counter wraps every range/power seconds (about an hour at 60 W for a 262 kJ range): a window longer
            // than that would lose whole wraps, which no reading can reveal.
            long microjoules = 0;
            for (var i = 0; i < after.Length; i++)
                microjoules += Delta(before[i], after[i], owner._domains[i].RangeMicrojoules);
            return new EnergyReading(microjoules / 1e6, Stopwatch.GetElapsedTime(start, end), 0);
        }
    }
}
