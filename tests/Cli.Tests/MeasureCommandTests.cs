using System.Text.Json;

namespace ParetoPrune.Cli.Tests;

public class MeasureCommandTests
{
    [Fact]
    public async Task LocalLatencyIsMeasuredAndEnergyExplainedWhenNoMeterIsReadable()
    {
        var (code, output, error) = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--budget", "0.5", "--json",
                                                             "--meter", "rapl@/nonexistent");
        Assert.Equal(2, code); // an explicitly requested meter that is not there is an error
        Assert.Contains("/nonexistent", error);

        (code, output, error) = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--budget", "0.5", "--json");
        Assert.True(code == 0, error);
        var m = JsonDocument.Parse(output).RootElement.GetProperty("measurement");
        var latency = m.GetProperty("Latency");
        Assert.True(latency.GetProperty("Runs").GetInt32() >= 20);
        Assert.InRange(latency.GetProperty("MedianMs").GetDouble(), latency.GetProperty("MinMs").GetDouble(), latency.GetProperty("MaxMs").GetDouble());
        Assert.Equal(JsonValueKind.Null, m.GetProperty("Energy").ValueKind);
        Assert.False(string.IsNullOrWhiteSpace(m.GetProperty("EnergyUnavailableReason").GetString()));
        Assert.StartsWith("measured on", JsonDocument.Parse(output).RootElement.GetProperty("provenance").GetString());
    }

    [Fact]
    public async Task ThePiEstimateIsLabelledAndFollowsItsProfile()
    {
        var (code, output, error) = await CliRunner.RunAsync("measure", CliRunner.Fixture("mobilenet_tiny.onnx"), "--device", "pi4-estimate", "--json");
        Assert.True(code == 0, error);
        var root = JsonDocument.Parse(output).RootElement;
        var m = root.GetProperty("measurement");
        Assert.StartsWith("estimated by profile raspberry-pi-4b", root.GetProperty("provenance").GetString());
        double ms = m.GetProperty("Latency").GetProperty("MedianMs").GetDouble();
        var energy = m.GetProperty("Energy");
        // The profile's active and idle board power: energy = latency × active, above idle = latency × (active − idle).
        double active = energy.GetProperty("AverageWatts").GetDouble(), idle = energy.GetProperty("IdleWatts").GetDouble();
        Assert.Equal(ms / 1000 * active, energy.GetProperty("JoulesPerInference").GetDouble(), 9);
        Assert.Equal(ms / 1000 * (active - idle), energy.GetProperty("DynamicJoulesPerInference").GetDouble(), 9);
        Assert.Equal(0, m.GetProperty("Latency").GetProperty("Runs").GetInt32()); // nothing was run
    }
}
