namespace ParetoPrune.Devices.Tests.Agent;

/// <summary>Several boards as one device, each a real agent over HTTP on loopback with a meter of known power.</summary>
public class DeviceFleetTests
{
    static readonly byte[] Model = TestModels.ConvNet(channels: 4);
    static readonly int[] Shape = [3, 8, 8];

    static readonly MeasurementPlan Plan = new()
    {
        WarmupRuns = 2, MinimumRuns = 5, TimeBudget = TimeSpan.FromSeconds(0.1), Threads = 1,
        MinimumEnergyWindow = TimeSpan.FromSeconds(0.2), MinimumPowerSamples = 10, IdleDuration = TimeSpan.FromSeconds(0.1),
    };

    [Fact]
    public async Task AMeasurementGoesToTheFirstFreeBoardAndNamesIt()
    {
        var gated = new GatedDevice(new HostDevice(name: "pi-a"));
        await using var a = await RunningAgent.StartAsync(gated);
        await using var b = await RunningAgent.StartAsync(new HostDevice(name: "pi-b"));
        using var remoteA = a.Remote();
        using var remoteB = b.Remote();
        var fleet = new DeviceFleet([(remoteA, a.Address.Authority), (remoteB, b.Address.Authority)], everyBoard: false);

        var first = fleet.MeasureAsync(Model, Shape, Plan); // board A takes it and holds it
        await gated.Entered.WaitAsync(TimeSpan.FromSeconds(15));
        var second = await fleet.MeasureAsync(Model, Shape, Plan).WaitAsync(TimeSpan.FromSeconds(30)); // A is busy: B measures it
        Assert.Equal($"pi-b at {b.Address.Authority}", second.Provenance.Device);
        Assert.False(first.IsCompleted);
        gated.Open();
        var held = await first.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal($"pi-a at {a.Address.Authority}", held.Provenance.Device);
        Assert.Null(held.Boards);
        Assert.Contains(a.Address.Authority, fleet.Name);
        Assert.Contains(b.Address.Authority, fleet.Name);
    }

    [Fact]
    public async Task EveryBoardMeasuresWhenPerBoardFiguresAreAskedFor()
    {
        using var meterA = new ClockPowerMeter(TimeSpan.FromMilliseconds(10), 2.0, 3.0, 2.0);
        using var meterB = new ClockPowerMeter(TimeSpan.FromMilliseconds(10), 2.0, 6.0, 2.0);
        await using var a = await RunningAgent.StartAsync(new HostDevice(meterA, "pi-a"), o => o with { Meter = meterA });
        await using var b = await RunningAgent.StartAsync(new HostDevice(meterB, "pi-b"), o => o with { Meter = meterB });
        using var remoteA = a.Remote();
        using var remoteB = b.Remote();
        var fleet = new DeviceFleet([(remoteA, a.Address.Authority), (remoteB, b.Address.Authority)], everyBoard: true);

        var m = await fleet.MeasureAsync(Model, Shape, Plan);

        var boards = Assert.IsAssignableFrom<IReadOnlyList<Measurement>>(m.Boards);
        Assert.Equal([$"pi-a at {a.Address.Authority}", $"pi-b at {b.Address.Authority}"], boards.Select(x => x.Provenance.Device));
        Assert.Equal(3.0, boards[0].Energy!.AverageWatts, 6);
        Assert.Equal(6.0, boards[1].Energy!.AverageWatts, 6);
        // The combined figure is the boards' mean, and says so.
        Assert.Equal(4.5, m.Energy!.AverageWatts, 6);
        Assert.Equal(boards.Average(x => x.Energy!.JoulesPerInference), m.Energy.JoulesPerInference, 12);
        Assert.Equal(boards.Average(x => x.Latency.MedianMs), m.Latency.MedianMs, 12);
        Assert.StartsWith("mean of 2 boards: pi-a at ", m.Provenance.Device);
        Assert.True(m.Provenance.IsMeasurement);
    }
}
