using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Studies;

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
        // with the profile's 90 % interval: its latency and power errors together.
        var pi = Devices.DeviceProfile.RaspberryPi4B;
        double mj = energy.Int8.GetProperty("value").GetDouble();
        var (low, high) = pi.EnergyInterval(mj)!.Value;
        Assert.Equal(low, energy.Int8.GetProperty("interval").GetProperty("low").GetDouble(), 1e-9);
        Assert.Equal(high, energy.Int8.GetProperty("interval").GetProperty("high").GetDouble(), 1e-9);
        Assert.True(low < mj && mj < high);
        Assert.Contains($"(90 % interval ×/÷ {high / mj:0.00})", energy.Int8.GetProperty("provenance").GetString()); // in every line that says where it came from
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

    /// <summary><c>search --quantize</c>: every exported model also has an INT8 variant, scored and measured as a model of its own,
    /// on the front beside the float ones (with a size objective, the INT8 twin is never dominated by its float model).</summary>
    [Fact]
    public async Task SearchWithQuantizeExportsFloatAndInt8VariantsOfTheFront()
    {
        string model = CliRunner.ShippedModel(directory), run = Path.Combine(directory, "run"); // weights enough for INT8 to shrink the file
        var budget = CliRunner.SearchBudget.ToArray();
        budget[Array.IndexOf(budget, "--final") + 1] = "2"; // two exported models
        var search = await CliRunner.RunAsync(["search", model, "-o", run, "-n", "4", "--sampler", "random", "--objectives", "accuracy,bytes",
                                               "--quantize", "--json", .. budget]);
        Assert.True(search.ExitCode == 0, search.Error);
        var summary = JsonDocument.Parse(search.Output).RootElement;
        var front = summary.GetProperty("front").EnumerateArray().ToList();
        Assert.Contains(front, c => c.GetProperty("int8").GetBoolean());

        using var store = ParetoPrune.Optimizer.Studies.StudyStore.Open(Path.Combine(run, "study.db"));
        Assert.NotNull(store.Definition.Quantize);
        var finals = store.Trials().Select(t => t.At(ParetoPrune.Optimizer.Sampling.SearchStage.Final)).OfType<ParetoPrune.Optimizer.Studies.StageResult>().ToList();
        Assert.Equal(2, finals.Count);
        foreach (var final in finals)
        {
            var int8 = final.Int8!;
            string file = Path.Combine(run, int8.ModelPath!);
            Assert.True(OnnxModel.IsQuantized(OnnxModel.Load(file)));
            using (new InferenceSession(file)) { }
            Assert.Equal(new FileInfo(file).Length, int8.Value(Objectives.ObjectiveKind.DenseBytes));
            Assert.True(int8.Value(Objectives.ObjectiveKind.DenseBytes) < final.Value(Objectives.ObjectiveKind.DenseBytes));
            Assert.Contains("INT8 QDQ", int8.Values.Single(v => v.Kind == Objectives.ObjectiveKind.Accuracy).Fidelity);
            Assert.NotNull(int8.TestAccuracy);
        }

        // export picks the variant asked for.
        int trial = store.Trials().First(t => t.At(ParetoPrune.Optimizer.Sampling.SearchStage.Final) is not null).Number;
        string floatOut = Path.Combine(directory, "float.onnx"), int8Out = Path.Combine(directory, "int8-export.onnx");
        Assert.Equal(0, (await CliRunner.RunAsync("export", run, "--trial", trial.ToString(), "-o", floatOut)).ExitCode);
        Assert.Equal(0, (await CliRunner.RunAsync("export", run, "--trial", trial.ToString(), "--int8", "-o", int8Out)).ExitCode);
        Assert.False(OnnxModel.IsQuantized(OnnxModel.Load(floatOut)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(run, "models", $"trial-{trial}-int8.onnx")), File.ReadAllBytes(int8Out));
    }

    static JsonElement Device(JsonElement model, string kind) =>
        model.GetProperty("device").EnumerateArray().Single(v => v.GetProperty("kind").GetString() == kind);
}
