namespace ParetoPrune.Devices.Tests;

public class MeasurementTests
{
    [Fact]
    public void AMeasurementHasEnergyOrAReason()
    {
        var latency = new LatencyDistribution(1, 1, 1, 1, 0, 1, 1, 1, 1, 1);
        var provenance = DeviceProvenance.Estimated("p", "d");
        Assert.Throws<ArgumentException>(() => new Measurement(latency, 1, null, null, provenance));
        Assert.Throws<ArgumentException>(() => new Measurement(latency, 1, new EnergyFigures(1, null, 1, null, null, null, null), "why", provenance));
    }

    [Fact]
    public async Task AMeasurementSurvivesJson()
    {
        // The device agent returns measurements over HTTP as JSON.
        using var meter = new ClockPowerMeter(null, 2, 5, 2);
        var plan = TestModels.QuickPlan with { MinimumRuns = 5, MinimumEnergyWindow = TimeSpan.FromSeconds(0.1), IdleDuration = TimeSpan.FromSeconds(0.05) };
        var measured = await new HostDevice(meter, "pi").MeasureAsync(TestModels.ConvNet(2), [3, 8, 8], plan);
        var estimated = await new EstimatedDevice(DeviceProfile.RaspberryPi4B, (_, _) => new ModelCounts(1, 1, 1)).MeasureAsync([0], [3], plan);
        foreach (var m in new[] { measured, estimated })
        {
            string json = System.Text.Json.JsonSerializer.Serialize(m);
            Assert.Equal(m, System.Text.Json.JsonSerializer.Deserialize<Measurement>(json));
            Assert.Contains(m.Provenance.IsMeasurement ? "\"Kind\":\"Measured\"" : "\"Kind\":\"Estimated\"", json);
        }
    }
}
