using ParetoPrune.Devices.Energy;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Tests.Meters;

public sealed class MeterSpecTests : IDisposable
{
    private readonly TempTree _sys = new();

    public MeterSpecTests()
    {
        _sys.Write("hwmon/hwmon0/name", "cpu_thermal");
        _sys.Write("hwmon/hwmon1/name", "ina260");
        _sys.Write("hwmon/hwmon1/power1_input", "2000000");
        _sys.Write("hwmon/hwmon1/update_interval", "5");
        _sys.Write("powercap/intel-rapl:0/energy_uj", "1000");
        _sys.Write("powercap/intel-rapl:0/max_energy_range_uj", "262143328850");
    }

    public void Dispose() => _sys.Dispose();

    [Fact]
    public void None_means_no_meter() => Assert.Null(MeterSpec.Parse("none"));

    [Fact]
    public void Ina2xx_with_and_without_a_name()
    {
        using (var any = MeterSpec.Parse($"ina2xx@{_sys.PathOf("hwmon")}"))
            Assert.Equal("INA260 via hwmon1 (power1_input, 5 ms)", any!.Name);
        using (var named = MeterSpec.Parse($"INA2XX:ina260@{_sys.PathOf("hwmon")}"))
            Assert.IsType<SampledEnergyMeter>(named);
        var e = Assert.Throws<EnergyUnavailableException>(() => MeterSpec.Parse($"ina2xx:ina219@{_sys.PathOf("hwmon")}"));
        Assert.Contains("'ina219'", e.Message);
    }

    [Fact]
    public void Rapl_with_a_root()
    {
        using var meter = MeterSpec.Parse($"rapl@{_sys.PathOf("powercap")}");
        Assert.Equal("RAPL package energy (1 domain)", meter!.Name);
        Assert.Throws<EnergyUnavailableException>(() => MeterSpec.Parse($"rapl@{_sys.PathOf("nowhere")}"));
    }

    [Fact]
    public void Usb_meter_on_a_serial_device()
    {
        var frame = new byte[130];
        (frame[0], frame[1], frame[8], frame[9], frame[128], frame[129]) = (0x09, 0x63, 0x0A, 0x8C, 0xFF, 0xF1); // UM24C, 2.7 W
        using var device = new FakeUsbMeterDevice(_ => frame);
        using var meter = MeterSpec.Parse($"um24c:{device.SlavePath}");
        Assert.Equal($"UM24C via {device.SlavePath} (USB meter, ~2 Hz)", meter!.Name);
        Assert.True(device.Polls >= 1); // the first sample is taken before Parse returns
    }

    [Theory]
    [InlineData("")]
    [InlineData("bogus")]
    [InlineData("um25c")]
    [InlineData("um25c:")]
    [InlineData("rapl:package-0")]
    [InlineData("ina2xx:")]
    [InlineData("ina2xx@")]
    [InlineData("none:x")]
    public void Malformed_specs_list_the_accepted_forms(string spec)
    {
        var e = Assert.Throws<FormatException>(() => MeterSpec.Parse(spec));
        Assert.Contains($"'{spec}'", e.Message);
        Assert.Contains("Accepted forms: ina2xx[:NAME][@ROOT]", e.Message);
        Assert.Contains("um25c:/dev/rfcomm0", e.Message);
    }
}
