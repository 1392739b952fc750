using ParetoPrune.Devices.Energy;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Tests.Meters;

public sealed class RaplEnergyMeterTests : IDisposable
{
    private const long Range = 262_143_328_850; // a typical package max_energy_range_uj
    private readonly TempTree _sys = new();

    public void Dispose() => _sys.Dispose();

    private void AddZone(string zone, string name, long energy, long range = Range)
    {
        _sys.Write($"{zone}/name", name);
        _sys.Write($"{zone}/energy_uj", energy.ToString());
        _sys.Write($"{zone}/max_energy_range_uj", range.ToString());
    }

    /// <summary>Two packages, plus zones that must not be counted: a core subzone and the MMIO view of package 0.</summary>
    private void TwoPackages(long package0, long package1)
    {
        AddZone("intel-rapl:0", "package-0", package0);
        AddZone("intel-rapl:0:0", "core", 5_000_000);
        AddZone("intel-rapl:1", "package-1", package1);
        AddZone("intel-rapl-mmio:0", "package-0", 7_000_000);
    }

    [Fact]
    public void Sums_package_deltas_across_a_wrap_around()
    {
        TwoPackages(package0: 1_000_000, package1: Range - 329_000);
        Assert.True(RaplEnergyMeter.TryOpen(_sys.Root, out var meter, out var reason), reason);
        using (meter)
        {
            Assert.Equal("RAPL package energy (2 domains)", meter.Name);
            var window = meter.Start();

            _sys.Write("intel-rapl:0/energy_uj", "3500000"); // +2.5 J
            _sys.Write("intel-rapl:1/energy_uj", "671000"); // wrapped: 329 000 µJ to the top, 671 000 after: +1 J
            _sys.Write("intel-rapl:0:0/energy_uj", "99000000"); // subzone: ignored
            _sys.Write("intel-rapl-mmio:0/energy_uj", "99000000"); // duplicate view: ignored
            var reading = window.Stop();

            Assert.Equal(3.5, reading.Joules, 9);
            Assert.Equal(0, reading.Samples);
            Assert.True(reading.Duration > TimeSpan.Zero);
        }
    }

    [Fact]
    public void Delta_handles_one_wrap()
    {
        Assert.Equal(500, RaplEnergyMeter.Delta(1000, 1500, Range));
        Assert.Equal(0, RaplEnergyMeter.Delta(1000, 1000, Range));
        Assert.Equal(300 + 200, RaplEnergyMeter.Delta(Range - 300, 200, Range)); // e1 + range − e0
    }

    [Fact]
    public void Missing_counter_is_the_reason()
    {
        AddZone("intel-rapl:0", "package-0", 1);
        File.Delete(_sys.PathOf("intel-rapl:0/energy_uj"));
        Assert.False(RaplEnergyMeter.TryOpen(_sys.Root, out var meter, out var reason));
        Assert.Null(meter);
        Assert.Equal($"{_sys.PathOf("intel-rapl:0/energy_uj")}: not found", reason);
    }

    [Fact]
    public void Directory_in_place_of_the_counter_is_the_reason()
    {
        AddZone("intel-rapl:0", "package-0", 1);
        File.Delete(_sys.PathOf("intel-rapl:0/energy_uj"));
        Directory.CreateDirectory(_sys.PathOf("intel-rapl:0/energy_uj"));
        Assert.False(RaplEnergyMeter.TryOpen(_sys.Root, out _, out var reason));
        Assert.Equal($"{_sys.PathOf("intel-rapl:0/energy_uj")}: is a directory, not a counter file", reason);
    }

    [Fact]
    public void Permission_denied_names_the_file_and_the_kernel_rule()
    {
        // Tests run as root, which reads a mode-000 file anyway: inject the error a normal user gets.
        AddZone("intel-rapl:0", "package-0", 1);
        static string Denied(string file) =>
            file.EndsWith("energy_uj", StringComparison.Ordinal) && !file.EndsWith("max_energy_range_uj", StringComparison.Ordinal)
                ? throw new UnauthorizedAccessException($"Access to the path '{file}' is denied.")
                : File.ReadAllText(file);

        Assert.False(RaplEnergyMeter.TryOpen(_sys.Root, Denied, out _, out var reason));
        Assert.Equal($"{_sys.PathOf("intel-rapl:0/energy_uj")}: permission denied (root only since Linux 5.10)", reason);
    }

    [Fact]
    public void No_powercap_or_no_packages_is_the_reason()
    {
        var missing = _sys.PathOf("none");
        Assert.False(RaplEnergyMeter.TryOpen(missing, out _, out var noRoot));
        Assert.StartsWith($"{missing}: not found", noRoot);

        AddZone("intel-rapl:0:0", "core", 1); // a subzone alone is no package
        Assert.False(RaplEnergyMeter.TryOpen(_sys.Root, out _, out var noPackage));
        Assert.Contains("no RAPL package domains", noPackage);

        var e = Assert.Throws<EnergyUnavailableException>(() => RaplEnergyMeter.Open(_sys.Root));
        Assert.Equal(noPackage, e.Message);
    }

    [Fact]
    public void Garbage_counter_is_the_reason()
    {
        AddZone("intel-rapl:0", "package-0", 1);
        _sys.Write("intel-rapl:0/energy_uj", "-5");
        Assert.False(RaplEnergyMeter.TryOpen(_sys.Root, out _, out var reason));
        Assert.Contains("expected a count of microjoules, read '-5'", reason);
    }

    [Fact]
    public void Counter_lost_during_a_window_fails_the_window_not_with_zero()
    {
        AddZone("intel-rapl:0", "package-0", 1);
        using var meter = RaplEnergyMeter.Open(_sys.Root);
        var window = meter.Start();
        File.Delete(_sys.PathOf("intel-rapl:0/energy_uj"));
        var e = Assert.Throws<IOException>(() => window.Stop());
        Assert.Contains(_sys.PathOf("intel-rapl:0/energy_uj"), e.Message);
    }
}
