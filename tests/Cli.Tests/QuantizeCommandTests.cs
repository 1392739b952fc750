using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Quantization;

namespace ParetoPrune.Cli.Tests;

/// <summary><c>paretoprune quantize</c> through the real executable: the INT8 file it writes, and the figures it reports.</summary>
public sealed class QuantizeCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("quantize-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [Fact]
    public async Task QuantizeWritesAnInt8ModelAndComparesItWithTheFloatOne()
    {
        string model = CliRunner.ShippedModel(directory), output = Path.Combine(directory, "int8.onnx");
        var run = await CliRunner.RunAsync("quantize", model, "-o", output, "--data", "fashion-mnist-sample", "--calibration", "percentile",
                                           "--calibration-images", "128", "--device", "pi4-estimate", "--json");
        Assert.True(run.ExitCode == 0, run.Error);
        var summary = JsonDocument.Parse(run.Output).RootElement;
        var models = summary.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("model").GetString()!);
        var (f, q) = (models["float"], models["int8"]);

        // The file is what the summary says, ONNX Runtime runs it, and it says how it was made.
        Assert.Equal(new FileInfo(output).Length, q.GetProperty("bytes").GetInt64());
        using (var session = new InferenceSession(output)) Assert.Single(session.OutputNames);
        Assert.Contains("99.99th percentile on 128 training images", OnnxModel.GetMetadata(OnnxModel.Load(output), Int8Quantizer.MetadataKey));
        Assert.Equal(5, summary.GetProperty("quantizedLayers").GetArrayLength());

        // About a quarter of the bytes, within a point of the float model's accuracy on the sample's 2,000 test images.
        Assert.InRange((double)q.GetProperty("bytes").GetInt64() / f.GetProperty("bytes").GetInt64(), 0.24, 0.3);
        Assert.True(Math.Abs(q.GetProperty("accuracy").GetDouble() - f.GetProperty("accuracy").GetDouble()) <= 0.01, run.Output);
        Assert.Contains("2,000 images", q.GetProperty("accuracyProvenance").GetString());
        // The Pi's figures are estimates, and say so; INT8 is estimated at the profile's integer rate.
        var energy = (Float: Device(f, "energy"), Int8: Device(q, "energy"));
        Assert.Contains("estimated", energy.Int8.GetProperty("provenance").GetString());
        Assert.True(energy.Int8.GetProperty("value").GetDouble() < energy.Float.GetProperty("value").GetDouble());
    }

    [Fact]
    public async Task AModelThatIsAlreadyQuantizedOrBadSettingsGetAClearError()
    {
        string model = CliRunner.ShippedModel(directory), output = Path.Combine(directory, "int8.onnx");
        var zero = await CliRunner.RunAsync("quantize", model, "-o", output, "--data", "fashion-mnist-sample", "--calibration-images", "0");
        Assert.Equal(2, zero.ExitCode);
        Assert.Contains("calibration needs at least one image", zero.Error);
        Assert.False(File.Exists(output));

        var first = await CliRunner.RunAsync("quantize", model, "-o", output, "--data", "fashion-mnist-sample", "--calibration-images", "32");
        Assert.True(first.ExitCode == 0, first.Error);
        Assert.Contains("INT8 / float", first.Output);
        var again = await CliRunner.RunAsync("quantize", output, "-o", Path.Combine(directory, "twice.onnx"), "--data", "fashion-mnist-sample");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already quantized", again.Error);
    }

    static JsonElement Device(JsonElement model, string kind) =>
        model.GetProperty("device").EnumerateArray().Single(v => v.GetProperty("kind").GetString() == kind);
}
