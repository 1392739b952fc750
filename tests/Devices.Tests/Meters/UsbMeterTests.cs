using System.Diagnostics;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Tests.Meters;

public class UsbMeterTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// A 130-byte poll answer built by hand: big-endian model id, volts, amps, watts, a temperature and filler, and
    /// the end marker in the last two bytes.
    /// </summary>
    private static byte[] Frame(ushort id, ushort volts, ushort amps, uint watts, ushort end = 0xFFF1)
    {
        var f = new byte[130];
        for (var i = 10; i < 128; i++)
            f[i] = (byte)(i * 7); // filler that nowhere repeats a model id
        f[0] = (byte)(id >> 8);
        f[1] = (byte)id;
        f[2] = (byte)(volts >> 8);
        f[3] = (byte)volts;
        f[4] = (byte)(amps >> 8);
        f[5] = (byte)amps;
        f[6] = (byte)(watts >> 24);
        f[7] = (byte)(watts >> 16);
        f[8] = (byte)(watts >> 8);
        f[9] = (byte)watts;
        f[10] = 0;
        f[11] = 25; // °C
        f[128] = (byte)(end >> 8);
        f[129] = (byte)end;
        return f;
    }

    // UM25C: 5.123 V (mV), 0.4567 A (0.1 mA), 2.339 W (mW).
    private static byte[] Um25c(ushort end = 0xFFF1) => Frame(0x09C9, 5123, 4567, 2339, end);

    // UM24C: 5.12 V (10 mV), 0.456 A (mA), 2.334 W (mW).
    private static byte[] Um24c() => Frame(0x0963, 512, 456, 2334);

    /// <summary>UM34C: UM24C units; the last byte is the XOR of bytes 1, 3, 7, 9, ... (libsigrok's list).</summary>
    private static byte[] Um34c()
    {
        var f = Frame(0x0D4C, 1203, 1500, 18045, end: 0x0000);
        byte x = 0;
        foreach (var i in new[] { 1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73, 79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127 })
            x ^= f[i];
        f[129] = x;
        return f;
    }

    [Fact]
    public void Parses_the_three_models_in_their_own_units()
    {
        Assert.Equal(new UsbMeterReading(5.123, 0.4567, 2.339), UsbMeter.Parse(UsbMeterModel.UM25C, Um25c()));
        Assert.Equal(new UsbMeterReading(5.12, 0.456, 2.334), UsbMeter.Parse(UsbMeterModel.UM24C, Um24c()));
        Assert.Equal(new UsbMeterReading(12.03, 1.5, 18.045), UsbMeter.Parse(UsbMeterModel.UM34C, Um34c()));
    }

    [Fact]
    public void Parse_rejects_short_foreign_and_corrupt_frames()
    {
        var shortFrame = Assert.Throws<InvalidDataException>(() => UsbMeter.Parse(UsbMeterModel.UM25C, Um25c()[..129]));
        Assert.Contains("129 bytes", shortFrame.Message);
        var foreign = Assert.Throws<InvalidDataException>(() => UsbMeter.Parse(UsbMeterModel.UM25C, Um24c()));
        Assert.Contains("starts with 0x0963, expected 0x09C9", foreign.Message);
        var badEnd = Assert.Throws<InvalidDataException>(() => UsbMeter.Parse(UsbMeterModel.UM25C, Um25c(end: 0xFFF0)));
        Assert.Contains("ends with 0xFFF0, expected 0xFFF1", badEnd.Message);
        var corrupt = Um34c();
        corrupt[7] ^= 0x01; // a watts byte, covered by the checksum
        var badSum = Assert.Throws<InvalidDataException>(() => UsbMeter.Parse(UsbMeterModel.UM34C, corrupt));
        Assert.Contains("checksum", badSum.Message);
    }

    [Fact]
    public void Polls_over_a_pseudo_terminal()
    {
        using var device = new FakeUsbMeterDevice(_ => Um25c());
        using var meter = new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, Timeout);

        Assert.Equal($"UM25C via {device.SlavePath} (USB meter, ~2 Hz)", meter.Name);
        Assert.Equal(TimeSpan.FromMilliseconds(500), meter.SampleInterval);
        Assert.Equal(new UsbMeterReading(5.123, 0.4567, 2.339), meter.Read());
        Assert.Equal(2.339, meter.ReadWatts(), 12);
        Assert.Equal(2, device.Polls);
        Assert.Equal(0, device.OtherBytes); // raw mode: nothing echoed or translated
    }

    [Fact]
    public void Um34c_over_a_pseudo_terminal()
    {
        using var device = new FakeUsbMeterDevice(_ => Um34c());
        using var meter = new UsbMeter(UsbMeterModel.UM34C, device.SlavePath, Timeout);
        Assert.Equal(18.045, meter.ReadWatts(), 12);
    }

    [Fact]
    public void Recovers_from_a_bad_end_and_a_short_frame()
    {
        using var device = new FakeUsbMeterDevice(poll => poll switch
        {
            1 => Um25c(end: 0x0000),
            2 => Um25c()[..60], // then silence: the rest never comes
            _ => Um25c(),
        });
        using var meter = new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, Timeout);

        var clock = Stopwatch.StartNew();
        Assert.Equal(2.339, meter.ReadWatts(), 12);
        Assert.Equal(3, device.Polls);
        Assert.True(clock.Elapsed >= Timeout, "the short frame is only given up at the timeout");
    }

    [Fact]
    public void A_foreign_frame_is_given_up_at_once()
    {
        using var device = new FakeUsbMeterDevice(poll => poll == 1 ? Um24c() : Um25c());
        using var meter = new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, TimeSpan.FromSeconds(5));

        var clock = Stopwatch.StartNew();
        Assert.Equal(2.339, meter.ReadWatts(), 12);
        Assert.Equal(2, device.Polls);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), "a whole frame's worth with no valid start needs no waiting");
    }

    [Fact]
    public void Finds_the_frame_after_stray_bytes()
    {
        using var device = new FakeUsbMeterDevice(_ => [0x00, 0x09, 0x55, 0xFF, .. Um25c()]);
        using var meter = new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, Timeout);
        Assert.Equal(2.339, meter.ReadWatts(), 12);
        Assert.Equal(1, device.Polls);
    }

    [Fact]
    public void Gives_up_after_three_bad_frames_naming_the_device()
    {
        using var device = new FakeUsbMeterDevice(_ => Um25c(end: 0x0000));
        using var meter = new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, Timeout);

        var e = Assert.Throws<IOException>(() => meter.ReadWatts());
        Assert.Contains(device.SlavePath, e.Message);
        Assert.Contains("poll 1: ends with 0x0000, expected 0xFFF1", e.Message);
        Assert.Contains("poll 3:", e.Message);
        Assert.Equal(UsbMeter.MaxPollsPerReading, device.Polls);
    }

    [Fact]
    public void Silence_is_a_timeout_naming_the_device()
    {
        using var device = new FakeUsbMeterDevice(_ => []);
        using var meter = new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, TimeSpan.FromMilliseconds(100));

        var e = Assert.Throws<TimeoutException>(() => meter.ReadWatts());
        Assert.Contains(device.SlavePath, e.Message);
        Assert.Equal(UsbMeter.MaxPollsPerReading, device.Polls);
    }

    [Fact]
    public void Hang_up_is_an_error_naming_the_device()
    {
        using var device = new FakeUsbMeterDevice(_ => null);
        using var meter = new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, TimeSpan.FromSeconds(5));

        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<IOException>(() => meter.ReadWatts());
        Assert.Contains(device.SlavePath, e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), "a hang-up is noticed without waiting for the timeout");
    }

    [Fact]
    public void A_long_measurement_survives_a_bad_frame()
    {
        using var device = new FakeUsbMeterDevice(poll => poll == 4 ? Um25c(end: 0x1234) : Um25c());
        using var energy = new SampledEnergyMeter(
            new UsbMeter(UsbMeterModel.UM25C, device.SlavePath, Timeout), interval: TimeSpan.FromMilliseconds(20));

        var window = energy.Start();
        Thread.Sleep(150);
        var reading = window.Stop();

        Assert.True(device.Polls > 4);
        Assert.Equal(2.339, reading.AverageWatts, 9);
        Assert.True(reading.Samples >= 2);
    }

    [Fact]
    public void Missing_device_is_named()
    {
        var e = Assert.Throws<IOException>(() => new UsbMeter(UsbMeterModel.UM25C, "/nonexistent/rfcomm9"));
        Assert.Contains("/nonexistent/rfcomm9", e.Message);
    }
}
