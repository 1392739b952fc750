using System.Text.Json;

namespace ParetoPrune.Cli.Tests;

public class MeasureCommandTests
{
    [Fact]
    public async Task LocalLatencyIsMeasuredAndEnergyExplainedWhenNoMeterIsReadable()
    {
        var (code, output, error) = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--device", "local", "--budget", "0.5", "--json",
                                                             "--meter", "rapl@/nonexistent"); // --budget: the older name of --measure-budget
        Assert.Equal(2, code); // an explicitly requested meter that is not there is an error
        Assert.Contains("/nonexistent", error);

        (code, output, error) = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--device", "local", "--measure-budget", "0.5", "--json");
        Assert.True(code == 0, error);
        var m = JsonDocument.Parse(output).RootElement.GetProperty("measurement");
        var latency = m.GetProperty("latency");
        Assert.True(latency.GetProperty("runs").GetInt32() >= 20);
        // Throughput at the median run's pace, the latency shown beside it.
        Assert.Equal(1000 / latency.GetProperty("medianMs").GetDouble(), m.GetProperty("inferencesPerSecond").GetDouble(), 6);
        Assert.InRange(latency.GetProperty("medianMs").GetDouble(), latency.GetProperty("minMs").GetDouble(), latency.GetProperty("maxMs").GetDouble());
        Assert.Equal(JsonValueKind.Null, m.GetProperty("energy").ValueKind);
        Assert.False(string.IsNullOrWhiteSpace(m.GetProperty("energyUnavailableReason").GetString()));
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
        double ms = m.GetProperty("latency").GetProperty("medianMs").GetDouble();
        var energy = m.GetProperty("energy");
        // The profile's active and idle board power: energy = latency × active, above idle = latency × (active − idle).
        double active = energy.GetProperty("averageWatts").GetDouble(), idle = energy.GetProperty("idleWatts").GetDouble();
        Assert.Equal(ms / 1000 * active, energy.GetProperty("joulesPerInference").GetDouble(), 9);
        Assert.Equal(ms / 1000 * (active - idle), energy.GetProperty("dynamicJoulesPerInference").GetDouble(), 9);
        Assert.Equal(0, m.GetProperty("latency").GetProperty("runs").GetInt32()); // nothing was run
        foreach (string statistic in new[] { "stdMs", "meanMs", "p10Ms", "p90Ms", "minMs", "maxMs", "medianCiLowerMs", "medianCiUpperMs" })
            Assert.Equal(JsonValueKind.Null, m.GetProperty("latency").GetProperty(statistic).ValueKind); // no runs, no distribution: nothing invented
        Assert.Equal(1000 / ms, m.GetProperty("inferencesPerSecond").GetDouble(), 6);
        AssertCamelCase(root);

        // The target device is the Pi here as in search and compare: the default, unless --device says otherwise.
        var byDefault = await CliRunner.RunAsync("measure", CliRunner.Fixture("mobilenet_tiny.onnx"), "--json");
        Assert.True(byDefault.ExitCode == 0, byDefault.Error);
        Assert.Equal(ms, JsonDocument.Parse(byDefault.Output).RootElement.GetProperty("measurement").GetProperty("latency").GetProperty("medianMs").GetDouble());
    }

    /// <summary>Every key at every level is camelCase, as the top level is.</summary>
    internal static void AssertCamelCase(JsonElement element, string path = "$")
    {
        if (element.ValueKind == JsonValueKind.Object)
            foreach (var property in element.EnumerateObject())
            {
                Assert.True(char.IsLower(property.Name[0]), $"{path}.{property.Name} is not camelCase");
                AssertCamelCase(property.Value, $"{path}.{property.Name}");
            }
        else if (element.ValueKind == JsonValueKind.Array)
            foreach (var item in element.EnumerateArray()) AssertCamelCase(item, path + "[]");
    }
}
