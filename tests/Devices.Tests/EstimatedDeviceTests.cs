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

    /// <summary>The published latencies the shipped profile was fitted to (bench/pi4b-profile/measurements.csv), with the
    /// counts `paretoprune-bench pi-profile` took from each model's ONNX export: every one lies within the profile's
    /// stated 90 % interval, and the fit is as far off as the description says.</summary>
    [Theory]
    [InlineData("ResNet-18", 1.814, 46.7, 49, 100.3)]
    [InlineData("ResNet-50", 4.089, 102.1, 122, 225.2)]
    [InlineData("GoogLeNet", 1.498, 26.5, 139, 132.0)]
    [InlineData("Inception v3 at 224", 2.838, 95.3, 233, 195.5)]
    [InlineData("ShuffleNetV2 x0.5", 0.040, 5.5, 374, 18.2)]
    [InlineData("ShuffleNetV2 x1.0", 0.145, 9.1, 374, 37.7)]
    [InlineData("ShuffleNetV2 x1.5", 0.296, 14.0, 374, 56.3)]
    [InlineData("ShuffleNetV2 x2.0", 0.583, 29.5, 374, 82.7)]
    [InlineData("MobileNetV2", 0.301, 14.0, 170, 46.0)]
    [InlineData("MobileNetV3-Large", 0.217, 21.9, 161, 40.0)]
    [InlineData("MobileNetV3-Small", 0.057, 10.1, 141, 15.0)]
    public void RaspberryPi4BFitsThePublishedLatenciesWithinItsInterval(string model, double gmac, double megabytes, int operators, double measuredMs)
    {
        var pi = DeviceProfile.RaspberryPi4B;
        double ms = pi.EstimateLatencyMs(new ModelCounts((long)(gmac * 1e9), (long)(megabytes * 1e6), operators));
        var (low, high) = pi.LatencyInterval(ms)!.Value;
        Assert.True(measuredMs >= low && measuredMs <= high, $"{model}: measured {measuredMs} ms, estimated {ms:0.0} ms in [{low:0.0}, {high:0.0}]");
        Assert.InRange((ms - measuredMs) / measuredMs, -0.31, 0.24); // the fit error the description states (-30 % to +23 %)
    }

    [Fact]
    public void RaspberryPi4BSaysWhatItIsAndHowSureItIs()
    {
        var pi = DeviceProfile.RaspberryPi4B;
        Assert.Equal("raspberry-pi-4b", pi.Name);
        Assert.Contains("AN ESTIMATE, not a measurement", pi.Description);
        Assert.Contains("bench/pi4b-profile", pi.Source);
        // Energy: latency × the all-core power, its interval widened by the power's own (independent log-normal errors: the
        // logarithms of the factors add in quadrature, 1.84 and 1.13 giving 1.86).
        double mj = 50 * pi.ActiveWatts!.Value;
        var (low, high) = pi.EnergyInterval(mj)!.Value;
        Assert.Equal(1.862, high / mj, 3);
        Assert.Equal(mj / low, high / mj, 9);
        Assert.True(pi.IdleWatts < pi.ActiveWatts);
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
