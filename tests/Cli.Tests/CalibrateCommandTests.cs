using System.Text.Json;
using ParetoPrune.Devices;

namespace ParetoPrune.Cli.Tests;

public sealed class CalibrateCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("calibrate-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [Fact]
    public async Task AProfileFittedHereEstimatesLikeItsFit()
    {
        string profile = Path.Combine(directory, "host.json");
        string[] models = ["plain_cnn_bn", "resnet_tiny", "mobilenet_tiny", "concat_net"];
        var (code, output, error) = await CliRunner.RunAsync(["calibrate", "--device", "local", "--measure-budget", "0.3", "--name", "this-host",
                                                              "--out", profile, "--json", "--models", .. models.Select(m => CliRunner.Fixture(m + ".onnx"))]);
        Assert.True(code == 0, error);
        var fit = JsonDocument.Parse(output).RootElement;
        Assert.Equal(4, fit.GetProperty("samples").GetInt32());
        var loaded = DeviceProfile.Load(profile);
        Assert.Equal("this-host", loaded.Name);

        // measure --device PROFILE.json gives the profile's own prediction, labelled as an estimate.
        var estimate = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--device", profile, "--json");
        Assert.True(estimate.ExitCode == 0, estimate.Error);
        var root = JsonDocument.Parse(estimate.Output).RootElement;
        Assert.StartsWith("estimated by profile this-host", root.GetProperty("provenance").GetString());
        Assert.True(root.GetProperty("measurement").GetProperty("latency").GetProperty("medianMs").GetDouble() > 0);

        var tooFew = await CliRunner.RunAsync("calibrate", "--device", "local", "--out", profile, "--models", CliRunner.Fixture("resnet_tiny.onnx"));
        Assert.Equal(2, tooFew.ExitCode);
        Assert.Contains("at least two models", tooFew.Error);
    }
}
