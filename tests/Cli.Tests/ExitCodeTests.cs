namespace ParetoPrune.Cli.Tests;

/// <summary>The exit-code contract (README, "Exit codes"): 2 and one line for what the user can fix, never a help dump
/// or a stack trace.</summary>
public class ExitCodeTests
{
    [Fact]
    public async Task AUsageErrorIsOneLineAndAHintWithExitCodeTwo()
    {
        var (code, output, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--amount", "half", "--out", "x.onnx");
        Assert.Equal(2, code);
        Assert.Empty(output);
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal("error: Cannot parse argument 'half' for option '--amount' as a number", lines[0].TrimEnd());
        Assert.Equal("see: paretoprune prune --help", lines[1].TrimEnd());
        Assert.DoesNotContain("System.", error);
        Assert.DoesNotContain("Usage:", error);

        var unknown = await CliRunner.RunAsync("prunee");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("'prunee'", unknown.Error);
        Assert.DoesNotContain("Required command", unknown.Error); // the unknown word is the error
    }

    [Fact]
    public async Task AnOutputPathThatIsAFolderIsBadInputNotACrash()
    {
        string folder = Directory.CreateTempSubdirectory("out-").FullName;
        try
        {
            var (code, _, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--amount", "0.5", "--out", folder);
            Assert.Equal(2, code);
            Assert.StartsWith("error: ", error);
            Assert.Contains(folder, error);
            Assert.DoesNotContain("   at ", error); // no stack trace
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task NonFiniteWeightsAndABadOutputAreRefusedBeforeAnyWork()
    {
        string folder = Directory.CreateTempSubdirectory("nan-").FullName;
        try
        {
            var model = Objectives.Onnx.OnnxModel.Load(CliRunner.Fixture("resnet_tiny.onnx"));
            var weight = model.Graph.Initializer.First(t => t.DataType == 1 && t.Dims.Count == 4);
            var values = Objectives.Onnx.OnnxTensors.ReadFloats(weight);
            values[5] = float.NaN;
            model.Graph.Initializer[model.Graph.Initializer.IndexOf(weight)] = Objectives.Onnx.OnnxTensors.CreateFloat(weight.Name, [.. weight.Dims], values);
            string nan = Path.Combine(folder, "nan.onnx");
            Objectives.Onnx.OnnxModel.Save(model, nan);

            var pruned = await CliRunner.RunAsync("prune", nan, "--amount", "0.5", "--out", Path.Combine(folder, "pruned.onnx"));
            Assert.Equal(2, pruned.ExitCode);
            Assert.Contains($"initializer '{weight.Name}' holds NaN at index 5", pruned.Error);
            Assert.False(File.Exists(Path.Combine(folder, "pruned.onnx")));

            // measure refuses it too; inspect counts it (its shapes are sound) and warns, in text and in JSON.
            var measured = await CliRunner.RunAsync("measure", nan, "--device", "pi4-estimate");
            Assert.Equal(2, measured.ExitCode);
            Assert.Contains($"initializer '{weight.Name}' holds NaN at index 5", measured.Error);
            var inspected = await CliRunner.RunAsync("inspect", nan);
            Assert.Equal(0, inspected.ExitCode);
            Assert.Contains($"warning: initializer '{weight.Name}' holds 1 non-finite value(s) (NaN at index 5)", System.Text.RegularExpressions.Regex.Replace(inspected.Output, @"\s+", " "));
            var inspectedJson = await CliRunner.RunAsync("inspect", nan, "--json");
            var bad = System.Text.Json.JsonDocument.Parse(inspectedJson.Output).RootElement.GetProperty("nonFiniteWeights").EnumerateArray().Single();
            Assert.Equal((weight.Name, 1, 5), (bad.GetProperty("initializer").GetString(), bad.GetProperty("count").GetInt32(), bad.GetProperty("firstIndex").GetInt32()));
            var clean = await CliRunner.RunAsync("inspect", CliRunner.Fixture("resnet_tiny.onnx"), "--json");
            Assert.Empty(System.Text.Json.JsonDocument.Parse(clean.Output).RootElement.GetProperty("nonFiniteWeights").EnumerateArray());

            // fine-tuning checks where it will write before it trains
            var finetune = await CliRunner.RunAsync("finetune", CliRunner.Fixture("resnet_tiny.onnx"), "--data", "fashion-mnist-sample", "--out", folder);
            Assert.Equal(2, finetune.ExitCode);
            Assert.Contains("is a folder", finetune.Error);
            Assert.DoesNotContain("epoch", finetune.Output);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task APruningThatWouldRemoveNothingSaysWhy()
    {
        string output = Path.Combine(Path.GetTempPath(), $"nothing-{Guid.NewGuid():N}.onnx");
        var (code, _, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--amount", "0.5", "--round-to", "1000", "--out", output);
        Assert.Equal(2, code);
        Assert.Contains("prunes nothing: with --round-to 1000 every group keeps all its channels", error);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void ReadableMessagesNameWhatToTypeNotDotNetTypes()
    {
        Assert.Equal("Cannot parse argument 'x' for option '--budget' as a number",
                     CliApp.Readable("Cannot parse argument 'x' for option '--budget' as expected type 'System.Nullable`1[System.Double]'."));
        Assert.Equal("Cannot parse argument 'x' for option '--trials' as a whole number",
                     CliApp.Readable("Cannot parse argument 'x' for option '--trials' as expected type 'System.Int32'."));
    }
}
