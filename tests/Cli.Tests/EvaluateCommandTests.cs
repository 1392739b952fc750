using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;

namespace ParetoPrune.Cli.Tests;

public sealed class EvaluateCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("evaluate-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [Fact]
    public async Task AccuracyAndCostsWithProvenance()
    {
        string path = Path.Combine(directory, "cnn.onnx");
        var model = Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 3);
        OnnxModel.Save(model, path);
        var (code, output, error) = await CliRunner.RunAsync("evaluate", path, "--data", "fashion-mnist-sample", "--json");
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(output).RootElement;

        // Independently: ONNX Runtime on the 2,000 test images of the sample.
        var test = DatasetCatalog.LoadEmbeddedSample().Test;
        using var session = new InferenceSession(path);
        var tensor = new DenseTensor<float>(test.Pixels, [test.Count, 1, 28, 28]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", tensor)]);
        var logits = results.First().AsTensor<float>();
        int correct = Enumerable.Range(0, test.Count).Count(n =>
            Enumerable.Range(0, 10).MaxBy(c => logits[n, c]) == test.Labels[n]);
        Assert.Equal((double)correct / test.Count, json.GetProperty("accuracy").GetProperty("top1").GetDouble(), 10);
        Assert.Contains("test", json.GetProperty("accuracy").GetProperty("provenance").GetString());
        Assert.Equal(ModelCost.Analyze(model).Macs, json.GetProperty("costs").GetProperty("macs").GetInt64());
        Assert.Equal("computed from the ONNX graph", json.GetProperty("costs").GetProperty("provenance").GetString());
        Assert.Equal(10, json.GetProperty("accuracy").GetProperty("perClass").EnumerateObject().Count());
    }
}
