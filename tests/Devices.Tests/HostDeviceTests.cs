using System.Diagnostics;
using ParetoPrune.Devices.Energy;

namespace ParetoPrune.Devices.Tests;

public class HostDeviceTests
{
    static readonly byte[] Tiny = TestModels.ConvNet(channels: 2);

    [Fact]
    public async Task MeasuresARealModelWithoutAMeter()
    {
        var plan = TestModels.QuickPlan;
        var m = await new HostDevice(name: "test host").MeasureAsync(Tiny, [3, 8, 8], plan);

        var l = m.Latency;
        Assert.True(l.Runs >= plan.MinimumRuns);
        Assert.InRange(l.MedianMs, l.MinMs!.Value, l.MaxMs!.Value);
        Assert.InRange(l.MedianMs, l.MedianCiLowerMs!.Value, l.MedianCiUpperMs!.Value);
        Assert.True(l.MinMs!.Value > 0 && l.P10Ms!.Value <= l.MedianMs && l.MedianMs <= l.P90Ms!.Value);
        Assert.True(m.InferencesPerSecond > 0);

        Assert.Null(m.Energy);
        Assert.Contains("no energy meter", m.EnergyUnavailableReason);

        var p = m.Provenance;
        Assert.True(p.IsMeasurement);
        Assert.Equal("test host", p.Device);
        Assert.StartsWith("ONNX Runtime 1.", p.Runtime);
        Assert.Equal(1, p.Threads);
        Assert.Equal("all", p.GraphOptimization);
        Assert.Null(p.Meter);
        Assert.StartsWith("measured on test host (", p.Description);
        Assert.Contains("1 thread, graph optimisation all", p.Description);
    }

    [Fact]
    public async Task StopsAtTheMinimumOnceTheIntervalIsNarrowEnough()
    {
        // Any CI is narrower than 1000 × the median: the first check, at the minimum, stops.
        var plan = TestModels.QuickPlan with { MinimumRuns = 25, TargetRelativeCiWidth = 1000 };
        var m = await new HostDevice().MeasureAsync(Tiny, [3, 8, 8], plan);
        Assert.Equal(25, m.Latency.Runs);
    }

    [Fact]
    public async Task StopsAtTheTimeBudgetWhenTheTargetIsOutOfReach()
    {
        var plan = TestModels.QuickPlan with { TargetRelativeCiWidth = 1e-12, TimeBudget = TimeSpan.FromSeconds(0.3) };
        var clock = Stopwatch.StartNew();
        var m = await new HostDevice().MeasureAsync(Tiny, [3, 8, 8], plan);
        Assert.True(m.Latency.Runs > plan.MinimumRuns);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task AWiderModelIsSlower()
    {
        // 2 vs 256 output channels on 64×64: 128× the convolution MACs (0.2 M vs 28 M).
        var plan = TestModels.QuickPlan with { MinimumRuns = 15 };
        var device = new HostDevice();
        var small = await device.MeasureAsync(Tiny, [3, 64, 64], plan);
        var wide = await device.MeasureAsync(TestModels.ConvNet(channels: 256), [3, 64, 64], plan);
        Assert.True(wide.Latency.MedianMs > small.Latency.MedianMs,
            $"wide {wide.Latency.MedianMs} ms vs small {small.Latency.MedianMs} ms");
    }

    [Fact]
    public async Task BatchSizeIsPrependedToTheSampleShape()
    {
        var plan = TestModels.QuickPlan with { BatchSize = 4, MinimumRuns = 5 };
        var m = await new HostDevice().MeasureAsync(Tiny, [3, 8, 8], plan);
        // Throughput counts samples, 4 per run, at the median run's pace (the figure the latency shows).
        double runsPerSecond = 1000 / m.Latency.MedianMs;
        Assert.Equal(4 * runsPerSecond, m.InferencesPerSecond, 4 * runsPerSecond * 1e-9);
    }

    [Fact]
    public async Task EnergyArithmeticFromAKnownPower()
    {
        // Idle windows draw 2 W, the inference window 5 W; "samples" every 25 ms, so the idle window teaches a
        // 25 ms interval and 20 samples stretch the window to at least 0.5 s (above the 0.3 s minimum).
        using var meter = new ClockPowerMeter(TimeSpan.FromMilliseconds(25), 2, 5, 2);
        var plan = TestModels.QuickPlan with { MinimumPowerSamples = 20 };
        var m = await new HostDevice(meter).MeasureAsync(Tiny, [3, 8, 8], plan);

        Assert.Null(m.EnergyUnavailableReason);
        var e = m.Energy!;
        Assert.True(e.Window >= TimeSpan.FromSeconds(0.5), $"window {e.Window}");
        Assert.True(e.Inferences >= 1);
        Assert.True(e.PowerSamples >= 20);
        Assert.Equal(2, e.IdleWatts!.Value, 9);
        Assert.Equal(5, e.AverageWatts, 9);
        double secondsPerInference = e.Window!.Value.TotalSeconds / e.Inferences!.Value;
        Assert.Equal(5 * secondsPerInference, e.JoulesPerInference, 12);
        Assert.Equal(3 * secondsPerInference, e.DynamicJoulesPerInference!.Value, 12);
        Assert.Equal(meter.Name, m.Provenance.Meter);
        Assert.Contains($"with {meter.Name}", m.Provenance.Description);
    }

    [Fact]
    public async Task WithoutIdleThereIsNoDynamicEnergy()
    {
        using var meter = new ClockPowerMeter(null, 5);
        var plan = TestModels.QuickPlan with { MeasureIdle = false };
        var m = await new HostDevice(meter).MeasureAsync(Tiny, [3, 8, 8], plan);
        var e = m.Energy!;
        Assert.True(e.Window >= plan.MinimumEnergyWindow);
        Assert.Equal(0, e.PowerSamples);
        Assert.Null(e.IdleWatts);
        Assert.Null(e.DynamicJoulesPerInference);
        Assert.Equal(5 * e.Window!.Value.TotalSeconds / e.Inferences!.Value, e.JoulesPerInference, 12);
    }

    [Fact]
    public async Task AMeterThatCannotMeasureGivesAReasonNotAZero()
    {
        using var meter = new UnavailableMeter();
        var m = await new HostDevice(meter).MeasureAsync(Tiny, [3, 8, 8], TestModels.QuickPlan with { MinimumRuns = 5 });
        Assert.Null(m.Energy);
        Assert.Contains("permission denied", m.EnergyUnavailableReason);
        Assert.True(m.Latency.Runs >= 5);
    }

    [Fact]
    public async Task RejectedModelsAndShapesGiveClearErrors()
    {
        var device = new HostDevice();
        var garbage = await Assert.ThrowsAsync<ArgumentException>(() => device.MeasureAsync([1, 2, 3, 4], [3, 8, 8], TestModels.QuickPlan));
        Assert.Contains("rejected the model (4 bytes, SHA-256", garbage.Message);
        Assert.IsAssignableFrom<Microsoft.ML.OnnxRuntime.OnnxRuntimeException>(garbage.InnerException);

        var rank = await Assert.ThrowsAsync<ArgumentException>(() => device.MeasureAsync(Tiny, [1, 3, 8, 8], TestModels.QuickPlan));
        Assert.Contains("without the batch dimension", rank.Message);

        var channels = await Assert.ThrowsAsync<ArgumentException>(() => device.MeasureAsync(Tiny, [4, 8, 8], TestModels.QuickPlan));
        Assert.Contains("does not accept", channels.Message);

        await Assert.ThrowsAsync<ArgumentException>(() => device.MeasureAsync(Tiny, [3, 8, 8], TestModels.QuickPlan with { MinimumRuns = 0 }));
    }

    [Fact]
    public async Task Cancels()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new HostDevice().MeasureAsync(Tiny, [3, 8, 8], TestModels.QuickPlan, cancelled.Token));
    }

    [Fact]
    public void EnergyWindowGrowsWithASlowMeter()
    {
        var plan = new MeasurementPlan();
        Assert.Equal(TimeSpan.FromSeconds(2), plan.EnergyWindow(null));
        Assert.Equal(TimeSpan.FromSeconds(2), plan.EnergyWindow(TimeSpan.FromMilliseconds(8)));   // INA260: 40 × 8 ms
        Assert.Equal(TimeSpan.FromSeconds(20), plan.EnergyWindow(TimeSpan.FromSeconds(0.5)));      // 2 Hz USB meter
    }
}
