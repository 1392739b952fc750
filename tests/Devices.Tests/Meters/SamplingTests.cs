using System.Diagnostics;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Tests.Meters;

/// <summary>
/// The sampler and the sampled energy meter, fed by the real INA2xx reader from a sysfs-like tree whose power file a
/// test rewrites while sampling runs. Not run alongside other tests: the timing bounds allow for a loaded machine,
/// not for sharing it with CPU-bound inference tests.
/// </summary>
[Collection(nameof(SamplingTests))]
[CollectionDefinition(nameof(SamplingTests), DisableParallelization = true)]
public sealed class SamplingTests : IDisposable
{
    private const string PowerFile = "hwmon1/power1_input";
    private readonly TempTree _sys = new();

    public SamplingTests()
    {
        _sys.Write("hwmon0/name", "cpu_thermal");
        _sys.Write("hwmon1/name", "ina260");
        _sys.Write("hwmon1/update_interval", "5");
        SetWatts(2.0);
    }

    public void Dispose() => _sys.Dispose();

    private (long Before, long After) SetWatts(double watts) => _sys.Write(PowerFile, ((long)Math.Round(watts * 1e6)).ToString());

    private Ina2xxHwmonMeter Sensor() => Ina2xxHwmonMeter.Find(root: _sys.Root);

    private static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    [Fact]
    public void Step_profile_integrates_to_the_exact_energy_within_the_sampling_error()
    {
        using var sampler = new PowerSampler(Sensor());
        Assert.Equal(TimeSpan.FromMilliseconds(5), sampler.Interval);
        sampler.Start();
        Assert.True(sampler.WaitForSampleAfter(long.MinValue, TimeSpan.FromSeconds(5)));

        var start = Stopwatch.GetTimestamp();
        Thread.Sleep(120);
        var (switchBefore, switchAfter) = SetWatts(5.0);
        Thread.Sleep(120);
        var end = Stopwatch.GetTimestamp();
        Assert.True(sampler.WaitForSampleAfter(end, TimeSpan.FromSeconds(5)));
        sampler.Stop();

        var trace = sampler.Snapshot();
        var energy = trace.Energy(start, end);

        // Exact integral of the profile: 2 W until the switch, 5 W after. The switch happened somewhere in
        // [switchBefore, switchAfter], which bounds the exact value within 3 W × that span.
        var exact = 2 * Seconds(switchBefore - start) + 5 * Seconds(end - switchBefore);
        var switchSpan = Seconds(switchAfter - switchBefore);

        // Sampling error: away from the step the trace is flat and its edges interpolate flat segments, so the
        // integral is exact there. Between the last 2 W sample (a) and the first 5 W sample (b) the trace ramps
        // linearly while the truth steps; both lie within [2, 5] W, so they differ by at most 3 W × (t_b − t_a).
        // The 0.01 J slack covers a sample's timestamp (the midpoint of its read) being up to half a read call off,
        // i.e. 3 W × ~3 ms even for a read stalled by a busy machine.
        var a = LastIndex(trace, w => w == 2.0);
        var b = a + 1;
        Assert.Equal(5.0, trace.Watts[b]);
        var gap = Seconds(trace.Timestamps[b] - trace.Timestamps[a]);
        var bound = 3 * gap + 3 * switchSpan + 0.01;

        Assert.InRange(energy, exact - bound, exact + bound);
        Assert.True(trace.SamplesIn(start, end) >= 10, $"only {trace.SamplesIn(start, end)} samples in 0.24 s at 5 ms");
        var seconds = Seconds(end - start);
        Assert.InRange(energy, 2 * seconds + 0.1, 5 * seconds - 0.1); // really the step: well between the two levels
    }

    private static int LastIndex(PowerTrace trace, Func<double, bool> match)
    {
        for (var i = trace.Count - 1; i >= 0; i--)
            if (match(trace.Watts[i]))
                return i;
        throw new InvalidOperationException("no such sample");
    }

    [Fact]
    public void Sampled_meter_gives_constant_power_times_the_window()
    {
        SetWatts(3.2);
        using var meter = new SampledEnergyMeter(Sensor());
        Assert.Equal("INA260 via hwmon1 (power1_input, 5 ms)", meter.Name);

        var window = meter.Start();
        Thread.Sleep(60);
        var reading = window.Stop();

        Assert.Equal(3.2 * reading.Duration.TotalSeconds, reading.Joules, 9);
        Assert.Equal(3.2, reading.AverageWatts, 9);
        Assert.InRange(reading.Duration, TimeSpan.FromMilliseconds(55), TimeSpan.FromSeconds(5));
        Assert.True(reading.Samples >= 1);
        Assert.Throws<InvalidOperationException>(() => window.Stop());
    }

    [Fact]
    public void Sampled_meter_follows_a_power_step()
    {
        using var meter = new SampledEnergyMeter(Sensor());
        var beforeStart = Stopwatch.GetTimestamp();
        var window = meter.Start();
        var afterStart = Stopwatch.GetTimestamp();
        Thread.Sleep(150);
        var (switchBefore, switchAfter) = SetWatts(5.0);
        Thread.Sleep(150);
        var reading = window.Stop();

        // Exact: 5 W over the window less 3 W over the part before the switch, whose length is bracketed by the
        // timestamps around Start() and around the switch. The meter's trace is not visible here, so its sampling
        // error gets a flat allowance of 3 W × 0.1 s, a generous bound on the gap between samples around the step
        // (the tight check is the sampler test above).
        var duration = reading.Duration.TotalSeconds;
        var lowest = 5 * duration - 3 * Seconds(switchAfter - beforeStart) - 0.3;
        var highest = 5 * duration - 3 * Seconds(switchBefore - afterStart) + 0.3;
        Assert.InRange(reading.Joules, lowest, highest);
    }

    [Fact]
    public void Overlapping_windows_each_keep_their_samples()
    {
        using var meter = new SampledEnergyMeter(Sensor());
        var outer = meter.Start();
        Thread.Sleep(30);
        SetWatts(4.0);
        Thread.Sleep(30);
        var inner = meter.Start();
        Thread.Sleep(40);
        var innerReading = inner.Stop();
        Thread.Sleep(20);
        var outerReading = outer.Stop();
        var later = meter.Start();
        Thread.Sleep(20);
        var laterReading = later.Stop();

        Assert.Equal(4.0, innerReading.AverageWatts, 9); // started well after the switch to 4 W
        Assert.InRange(outerReading.AverageWatts, 2.0, 4.0);
        Assert.True(outerReading.Samples > innerReading.Samples);
        Assert.Equal(4.0, laterReading.AverageWatts, 9);
    }

    [Fact]
    public void A_meter_that_keeps_failing_stops_the_window_with_its_error()
    {
        using var meter = new SampledEnergyMeter(Sensor());
        var window = meter.Start();
        File.Delete(_sys.PathOf(PowerFile));
        // A read already under way when the file went may still land a sample; end the window well after it (5 ms interval),
        // so that only failing reads can follow its end (under load that read finished after a Stop called at once).
        Thread.Sleep(50);
        var e = Assert.Throws<IOException>(() => window.Stop());
        Assert.Contains("INA260 via hwmon1", e.Message);
        Assert.Contains("power1_input", e.Message);
    }

    [Fact]
    public void One_failed_read_is_skipped()
    {
        using var sampler = new PowerSampler(Sensor(), TimeSpan.FromMilliseconds(30));
        sampler.Start();
        Assert.True(sampler.WaitForSampleAfter(long.MinValue, TimeSpan.FromSeconds(5)));
        _sys.Write(PowerFile, "garbage");
        Thread.Sleep(35); // one or two reads fail, fewer than MaxConsecutiveFailures
        SetWatts(2.5);
        var now = Stopwatch.GetTimestamp();
        Assert.True(sampler.WaitForSampleAfter(now, TimeSpan.FromSeconds(5)));
        Assert.Null(sampler.Failure);
        Assert.True(sampler.IsRunning);
        Assert.Equal(2.5, sampler.Snapshot(now).Watts[^1]);
    }

    [Fact]
    public void A_meter_that_stops_answering_is_retried_and_no_window_is_integrated_across_the_outage()
    {
        using var meter = new SampledEnergyMeter(Sensor());
        var acrossTheOutage = meter.Start();
        var duringTheOutage = meter.Start();
        File.Delete(_sys.PathOf(PowerFile)); // the sensor disappears (an I2C reset, an unplugged board)
        var e = Assert.Throws<IOException>(() => duringTheOutage.Stop());
        Assert.Contains("INA260 via hwmon1", e.Message);
        Assert.Contains("not answering", e.Message);
        Assert.Contains("power1_input", e.Message);

        SetWatts(3.0); // it comes back: the sampler, still retrying (every second), reads it again
        var back = Stopwatch.GetTimestamp();
        var recovered = Stopwatch.StartNew();
        while (true)
        {
            Assert.True(recovered.Elapsed < TimeSpan.FromSeconds(10), "the meter was not read again within 10 s of coming back");
            try
            {
                var window = meter.Start();
                Thread.Sleep(30);
                var reading = window.Stop();
                if (reading.Samples == 0 || Stopwatch.GetTimestamp() - back < Stopwatch.Frequency / 100) continue;
                Assert.Equal(3.0, reading.AverageWatts, 9);
                break;
            }
            catch (IOException) when (recovered.Elapsed < TimeSpan.FromSeconds(10)) { Thread.Sleep(50); } // not read again yet
        }
        var across = Assert.Throws<IOException>(() => acrossTheOutage.Stop());
        Assert.Contains("did not answer for", across.Message);
        Assert.Contains("measure again", across.Message);
    }

    [Fact]
    public void What_the_sampler_holds_is_bounded()
    {
        using (var meter = new SampledEnergyMeter(Sensor()))
        {
            Thread.Sleep(200); // idle: about 40 reads at 5 ms, of which only the latest is kept
            Assert.Equal(1, meter.SamplesHeld);
            var window = meter.Start();
            Thread.Sleep(100);
            Assert.InRange(meter.SamplesHeld, 3, 1000);
            window.Stop();
            Assert.Equal(1, meter.SamplesHeld);
        }
        using var sampler = new PowerSampler(Sensor(), TimeSpan.FromMilliseconds(2), capacity: 8);
        sampler.Start();
        var start = Stopwatch.GetTimestamp();
        // The oldest go first: once the sampler has read more than its capacity since `start`, none from before is held.
        // Waited for, not slept on: a starved sampling thread (a busy machine) takes longer than 200 ms to get there.
        var deadline = Stopwatch.StartNew();
        while ((sampler.Snapshot().Timestamps is var held && (held.Count == 0 || held[0] <= start)) && deadline.Elapsed < TimeSpan.FromSeconds(10))
            Thread.Sleep(20);
        Assert.InRange(sampler.Count, 1, 8);
        Assert.True(sampler.Snapshot().Timestamps[0] > start);
    }

    [Fact]
    public void Sampler_refuses_misuse()
    {
        using var sampler = new PowerSampler(Sensor(), TimeSpan.FromMilliseconds(20));
        Assert.Throws<InvalidOperationException>(() => sampler.WaitForSampleAfter(0, TimeSpan.FromMilliseconds(10)));
        sampler.Start();
        Assert.Throws<InvalidOperationException>(sampler.Start);
        sampler.Stop();
        Assert.False(sampler.IsRunning);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PowerSampler(Sensor(), TimeSpan.Zero));
    }

    [Fact]
    public void Idle_power_is_the_average_over_the_duration()
    {
        SetWatts(2.7);
        var idle = IdlePower.Measure(Sensor(), TimeSpan.FromMilliseconds(80));
        Assert.Equal(2.7, idle.Watts, 9);
        Assert.True(idle.Samples >= 1);
        Assert.True(idle.Duration >= TimeSpan.FromMilliseconds(80));
    }
}
