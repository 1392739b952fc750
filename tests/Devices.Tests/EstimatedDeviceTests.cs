namespace ParetoPrune.Devices.Tests;

public class EstimatedDeviceTests
{
    static readonly DeviceProfile Profile = new("test-board", "Test Board", "coefficients chosen for the test", "this test",
        FixedMs: 2, MsPerGmac: 100, MsPerMegabyte: 10, MsPerLayer: 0.5, IdleWatts: 2, ActiveWatts: 5);

    static readonly ModelCounts Counts = new(Macs: 500_000_000, WeightBytes: 2_000_000, Layers: 10);

    [Fact]
    public async Task PredictsFromTheProfileAndSaysSo()
    {
        int[]? seenShape = null;
        var device = new EstimatedDevice(Profile, (_, shape) => { seenShape = shape; return Counts; });
        var m = await device.MeasureAsync([0], [3, 16, 16], new MeasurementPlan());

        // 2 + 100·0.5 + 10·2 + 0.5·10 = 77 ms; 0.077 s × 5 W = 0.385 J; × (5 − 2) W = 0.231 J.
        Assert.Equal([1, 3, 16, 16], seenShape!);
        Assert.Equal(77, m.Latency.MedianMs, 9);
        Assert.Equal(0, m.Latency.Runs);
        Assert.Equal(1000.0 / 77, m.InferencesPerSecond, 9);
        var e = m.Energy!;
        Assert.Equal(0.385, e.JoulesPerInference, 12);
        Assert.Equal(0.231, e.DynamicJoulesPerInference!.Value, 12);
        Assert.Equal((5.0, 2.0), (e.AverageWatts, e.IdleWatts!.Value));
        Assert.Null(e.PowerSamples);
        Assert.Null(e.Window);

        Assert.False(m.Provenance.IsMeasurement);
        Assert.Equal(DeviceProvenanceKind.Estimated, m.Provenance.Kind);
        Assert.Null(m.Provenance.Meter);
        Assert.StartsWith("estimated by profile test-board (Test Board", m.Provenance.Description);
        Assert.Equal("Test Board (estimated)", device.Name);
    }

    [Fact]
    public async Task EnergyPerInferenceIsPerSample()
    {
        var m = await new EstimatedDevice(Profile, (_, _) => Counts).MeasureAsync([0], [3, 16, 16], new MeasurementPlan { BatchSize = 2 });
        Assert.Equal(77, m.Latency.MedianMs, 9);
        Assert.Equal(0.385 / 2, m.Energy!.JoulesPerInference, 12);
        Assert.Equal(2000.0 / 77, m.InferencesPerSecond, 9);
    }

    [Fact]
    public async Task WithoutPowerFiguresEnergyIsUnavailable()
    {
        var m = await new EstimatedDevice(Profile with { ActiveWatts = null, IdleWatts = null }, (_, _) => Counts)
            .MeasureAsync([0], [3], new MeasurementPlan());
        Assert.Null(m.Energy);
        Assert.Contains("no active power", m.EnergyUnavailableReason);
    }

    [Fact]
    public void RaspberryPi4BReproducesItsSourceRun()
    {
        var pi = DeviceProfile.RaspberryPi4B;
        Assert.Equal("raspberry-pi-4b", pi.Name);
        Assert.Contains("ROUGH ESTIMATE", pi.Description);
        // MobileNetV2 as the description counts it: 0.30 GMAC, 13.6 MB of weights, 100 operators → ≈ 195 ms at 3.7 W.
        double ms = pi.EstimateLatencyMs(new ModelCounts(300_000_000, 13_600_000, 100));
        Assert.InRange(ms, 193, 197);
        Assert.InRange(ms / 1000 * pi.ActiveWatts!.Value, 0.70, 0.74);
        Assert.InRange(ms / 1000 * (pi.ActiveWatts.Value - pi.IdleWatts!.Value), 0.18, 0.22);
    }

    [Fact]
    public void ProfileJsonRoundTrips()
    {
        string path = Path.Combine(Path.GetTempPath(), $"profile-{Guid.NewGuid():N}.json");
        try
        {
            Profile.Save(path);
            Assert.Equal(Profile, DeviceProfile.Load(path));
            Assert.Equal(DeviceProfile.RaspberryPi4B, DeviceProfile.Parse(DeviceProfile.RaspberryPi4B.ToJson()));
            Assert.Contains("\"msPerGmac\": 100", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void BadProfilesAreRejectedWithTheReason()
    {
        string json = Profile.ToJson();
        Assert.Contains("non-negative", Assert.Throws<InvalidDataException>(() =>
            DeviceProfile.Parse(json.Replace("\"msPerGmac\": 100", "\"msPerGmac\": -1"))).Message);
        Assert.Throws<InvalidDataException>(() => DeviceProfile.Parse(json.Replace("\"msPerLayer\": 0.5,", "")));  // missing
        Assert.Throws<InvalidDataException>(() => DeviceProfile.Parse(json.Replace("\"fixedMs\"", "\"fixedMilliseconds\"")));  // unknown
        Assert.Contains("exceeds active", Assert.Throws<InvalidDataException>(() =>
            DeviceProfile.Parse((Profile with { IdleWatts = 6 }).ToJson())).Message);
        Assert.Throws<InvalidDataException>(() => DeviceProfile.Load(Path.Combine(Path.GetTempPath(), "no-such-profile.json")));
        Assert.Throws<InvalidDataException>(() => new EstimatedDevice(Profile with { Description = " " }, (_, _) => Counts));
    }
}
