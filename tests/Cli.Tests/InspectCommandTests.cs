using System.Text.Json;

namespace ParetoPrune.Cli.Tests;

public class InspectCommandTests
{
    static JsonElement Expected(string name) =>
        JsonDocument.Parse(File.ReadAllText(CliRunner.Fixture(name + ".expected.json"))).RootElement;

    [Theory]
    [InlineData("resnet_tiny")]
    [InlineData("mobilenet_tiny")]
    [InlineData("concat_net")]
    public async Task JsonTotalsMatchTheIndependentTorchCount(string name)
    {
        var (code, output, error) = await CliRunner.RunAsync("inspect", CliRunner.Fixture(name + ".onnx"), "--json");
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(output).RootElement;
        var expected = Expected(name);
        Assert.Equal(expected.GetProperty("macs").GetInt64(), json.GetProperty("macs").GetInt64());
        Assert.Equal(expected.GetProperty("params").GetInt64(), json.GetProperty("params").GetInt64());
        Assert.Equal(new FileInfo(CliRunner.Fixture(name + ".onnx")).Length, json.GetProperty("bytes").GetInt64());
        var nodes = json.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(json.GetProperty("macs").GetInt64(), nodes.Sum(n => n.GetProperty("macs").GetInt64()));
        Assert.Contains(nodes, n => n.GetProperty("op").GetString() == "Conv");
    }

    [Fact]
    public async Task ADynamicSizeLeadsToTheCommandThatTakesAShape()
    {
        string folder = Directory.CreateTempSubdirectory("dynamic-").FullName;
        try
        {
            var model = Objectives.Onnx.OnnxModel.Load(CliRunner.Fixture("resnet_tiny.onnx"));
            model.Graph.Input[0].Type.TensorType.Shape.Dim[2] = new Objectives.Onnx.Proto.TensorShapeProto.Types.Dimension { DimParam = "height" };
            string path = Path.Combine(folder, "dynamic.onnx");
            Objectives.Onnx.OnnxModel.Save(model, path);
            foreach (var args in new[]
                     {
                         new[] { "prune", path, "--amount", "0.5", "--out", Path.Combine(folder, "p.onnx") }, ["measure", path], ["inspect", path],
                         ["evaluate", path, "--data", "fashion-mnist-sample"],
                         ["finetune", path, "--data", "fashion-mnist-sample", "--epochs", "1", "--out", Path.Combine(folder, "f.onnx")],
                         ["search", path, "--data", "fashion-mnist-sample", "-n", "2", "--out", Path.Combine(folder, "run")],
                     })
            {
                var (code, _, error) = await CliRunner.RunAsync(args);
                Assert.True(code == 2, $"{args[0]}: exit {code}: {error}");
                Assert.Contains("paretoprune inspect MODEL --input-shape", System.Text.RegularExpressions.Regex.Replace(error, @"\s+", " "));
            }
            // The hint's command works.
            var inspected = await CliRunner.RunAsync("inspect", path, "--input-shape", "1x3x32x32", "--json");
            Assert.True(inspected.ExitCode == 0, inspected.Error);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task TheTableListsLayersAndTotalsWithProvenance()
    {
        var (code, output, _) = await CliRunner.RunAsync("inspect", CliRunner.Fixture("resnet_tiny.onnx"));
        Assert.Equal(0, code);
        Assert.Contains("GlobalAveragePool", output);
        Assert.Contains("874,656", output); // total MACs, counted independently from the torch module
        Assert.Contains("6,450", output);
        Assert.Contains("computed from the graph", output);
    }

    [Fact]
    public async Task AnInputShapeChangesTheCount()
    {
        var (code, output, _) = await CliRunner.RunAsync("inspect", CliRunner.Fixture("resnet_tiny.onnx"), "--json", "--input-shape", "1x3x32x32");
        Assert.Equal(0, code);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal([1, 3, 32, 32], json.GetProperty("inputShape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.True(json.GetProperty("macs").GetInt64() > 3 * 874_656);
    }

    [Fact]
    public async Task BadInputGivesAClearErrorAndExitCodeTwo()
    {
        var missing = await CliRunner.RunAsync("inspect", "/no/such/model.onnx");
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("'/no/such/model.onnx' does not exist", missing.Error);

        string garbage = Path.Combine(Path.GetTempPath(), $"garbage-{Guid.NewGuid():N}.onnx");
        await File.WriteAllBytesAsync(garbage, [1, 2, 3, 4, 5, 6, 7]);
        try
        {
            var bad = await CliRunner.RunAsync("inspect", garbage);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains("is not a valid ONNX model", bad.Error);
            Assert.Empty(bad.Output);
        }
        finally { File.Delete(garbage); }

        var shape = await CliRunner.RunAsync("inspect", CliRunner.Fixture("resnet_tiny.onnx"), "--input-shape", "1x3xbig");
        Assert.Equal(2, shape.ExitCode);
        Assert.Contains("'1x3xbig' is not a shape like 1x3x32x32", shape.Error);
    }

    [Fact]
    public void TheBuiltExecutableRunsEndToEnd()
    {
        var (code, output, error) = CliRunner.RunProcess("inspect", CliRunner.Fixture("mobilenet_tiny.onnx"), "--json");
        Assert.True(code == 0, error);
        Assert.Equal(Expected("mobilenet_tiny").GetProperty("macs").GetInt64(), JsonDocument.Parse(output).RootElement.GetProperty("macs").GetInt64());
    }
}
