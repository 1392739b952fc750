using ParetoPrune.Devices.Energy;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Tests.Meters;

public sealed class Ina2xxHwmonMeterTests : IDisposable
{
    private readonly TempTree _sys = new();

    public void Dispose() => _sys.Dispose();

    /// <summary>
    /// Like /sys/class/hwmon: hwmonN are symlinks into a device tree, each with a name file.
    /// </summary>
    private void AddDevice(string hwmon, string chip, params (string File, string Value)[] files)
    {
        var target = _sys.PathOf($"devices/{hwmon}-{chip}");
        _sys.Write($"devices/{hwmon}-{chip}/name", chip);
        foreach (var (file, value) in files)
            _sys.Write($"devices/{hwmon}-{chip}/{file}", value);
        Directory.CreateDirectory(_sys.PathOf("class/hwmon"));
        Directory.CreateSymbolicLink(_sys.PathOf($"class/hwmon/{hwmon}"), target);
    }

    private string HwmonRoot => _sys.PathOf("class/hwmon");

    [Fact]
    public void Finds_the_ina_by_name_file_and_reads_power1_input()
    {
        AddDevice("hwmon0", "cpu_thermal", ("temp1_input", "45000"));
        AddDevice("hwmon1", "ina260", ("power1_input", "2500000"), ("in1_input", "5000"), ("curr1_input", "1"), ("update_interval", "8"));

        var meter = Ina2xxHwmonMeter.Find(root: HwmonRoot);

        Assert.Equal("INA260 via hwmon1 (power1_input, 8 ms)", meter.Name);
        Assert.Equal("ina260", meter.Chip);
        Assert.Equal(TimeSpan.FromMilliseconds(8), meter.SampleInterval);
        Assert.Equal(2.5, meter.ReadWatts(), 12); // 2 500 000 µW, not the 5 V × 1 mA of the other files
    }

    [Fact]
    public void Without_power1_input_multiplies_bus_voltage_by_current()
    {
        AddDevice("hwmon3", "ina219", ("in0_input", "12"), ("in1_input", "5100"), ("curr1_input", "-600"));

        var meter = Ina2xxHwmonMeter.Find("ina219", HwmonRoot);

        Assert.Equal("INA219 via hwmon3 (in1_input × curr1_input, 10 ms)", meter.Name);
        Assert.Equal(TimeSpan.FromMilliseconds(10), meter.SampleInterval);
        Assert.Equal(3.06, meter.ReadWatts(), 12); // 5100 mV × 600 mA (a reversed shunt reads as a magnitude)
    }

    [Fact]
    public void The_shunt_the_driver_assumes_is_named_with_every_figure()
    {
        // The ina2xx driver's default (10 mΩ, in µΩ): on a 0.1 Ω breakout it reads 10× high, so the provenance says it.
        AddDevice("hwmon4", "ina226", ("power1_input", "2500000"), ("shunt_resistor", "10000"));
        Assert.Equal("INA226 via hwmon4 (power1_input, 10 ms, shunt 10 mΩ)", Ina2xxHwmonMeter.Find("ina226", HwmonRoot).Name);
    }

    [Fact]
    public void Reads_the_current_value_each_time()
    {
        AddDevice("hwmon1", "ina226", ("power1_input", "2000000"));
        var meter = Ina2xxHwmonMeter.Find(root: HwmonRoot);
        Assert.Equal(2.0, meter.ReadWatts(), 12);
        _sys.Write("devices/hwmon1-ina226/power1_input", "5125000");
        Assert.Equal(5.125, meter.ReadWatts(), 12);
    }

    [Fact]
    public void Missing_root_is_named()
    {
        var missing = _sys.PathOf("nowhere");
        var e = Assert.Throws<EnergyUnavailableException>(() => Ina2xxHwmonMeter.Find(root: missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void No_ina_lists_what_was_found()
    {
        AddDevice("hwmon0", "cpu_thermal", ("temp1_input", "45000"));
        AddDevice("hwmon1", "rpi_volt", ("in0_lcrit_alarm", "0"));
        var e = Assert.Throws<EnergyUnavailableException>(() => Ina2xxHwmonMeter.Find(root: HwmonRoot));
        Assert.Contains("No INA2xx power sensor", e.Message);
        Assert.Contains("hwmon0=cpu_thermal, hwmon1=rpi_volt", e.Message);
    }

    [Fact]
    public void Several_inas_need_a_name()
    {
        AddDevice("hwmon1", "ina219", ("power1_input", "1000000"));
        AddDevice("hwmon2", "ina260", ("power1_input", "2000000"));
        AddDevice("hwmon4", "ina260", ("power1_input", "4000000"));

        var e = Assert.Throws<EnergyUnavailableException>(() => Ina2xxHwmonMeter.Find(root: HwmonRoot));
        Assert.Contains("hwmon1=ina219, hwmon2=ina260, hwmon4=ina260", e.Message);

        Assert.Equal(1.0, Ina2xxHwmonMeter.Find("INA219", HwmonRoot).ReadWatts(), 12);
        var twins = Assert.Throws<EnergyUnavailableException>(() => Ina2xxHwmonMeter.Find("ina260", HwmonRoot));
        Assert.Contains("ina2xx:hwmon2", twins.Message);
        Assert.Equal(4.0, Ina2xxHwmonMeter.Find("hwmon4", HwmonRoot).ReadWatts(), 12);

        var unknown = Assert.Throws<EnergyUnavailableException>(() => Ina2xxHwmonMeter.Find("ina226", HwmonRoot));
        Assert.Contains("'ina226'", unknown.Message);
        Assert.Contains("hwmon2=ina260", unknown.Message);
    }

    [Fact]
    public void A_sensor_without_readings_is_refused()
    {
        AddDevice("hwmon1", "ina231", ("in1_input", "5000"));
        var e = Assert.Throws<EnergyUnavailableException>(() => Ina2xxHwmonMeter.Find(root: HwmonRoot));
        Assert.Contains("neither power1_input nor both in1_input and curr1_input", e.Message);
    }

    [Fact]
    public void Unreadable_values_name_the_file()
    {
        AddDevice("hwmon1", "ina260", ("power1_input", "2000000"));
        var meter = Ina2xxHwmonMeter.Find(root: HwmonRoot);
        var file = Path.Combine(HwmonRoot, "hwmon1", "power1_input"); // named by the path it was found at

        _sys.Write("devices/hwmon1-ina260/power1_input", "garbage");
        var bad = Assert.Throws<InvalidDataException>(() => meter.ReadWatts());
        Assert.Contains(file, bad.Message);

        File.Delete(_sys.PathOf("devices/hwmon1-ina260/power1_input"));
        var gone = Assert.Throws<IOException>(() => meter.ReadWatts());
        Assert.Contains(file, gone.Message);
    }
}
