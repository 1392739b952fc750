using System.Text.Json;
using ParetoPrune.Objectives.Onnx;

namespace ParetoPrune.Cli.Tests;

public sealed class PruneCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("prune-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [Fact]
    public async Task StructuredPruningWritesASmallerModelAndReportsTheGroups()
    {
        string output = Path.Combine(directory, "pruned.onnx");
        var (code, stdout, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--criterion", "fpgm",
                                                             "--amount", "0.5", "--json", "--out", output);
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(stdout).RootElement;
        var after = ModelCost.Analyze(OnnxModel.Load(output));
        Assert.Equal(after.Macs, json.GetProperty("after").GetProperty("macs").GetInt64());
        Assert.Equal(874_656, json.GetProperty("before").GetProperty("macs").GetInt64());
        Assert.True(after.Macs < 874_656 / 2);
        Assert.All(json.GetProperty("details").EnumerateArray(), g =>
            Assert.Equal(g.GetProperty("channels").GetInt32() / 2, g.GetProperty("kept").GetInt32()));
    }

    [Fact]
    public async Task KeepOverridesOneGroupAndRoundingApplies()
    {
        string output = Path.Combine(directory, "kept.onnx");
        var (code, stdout, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--amount", "0.3",
                                                             "--round-to", "4", "--keep", "g4=12", "--json", "--out", output);
        Assert.True(code == 0, error);
        var groups = JsonDocument.Parse(stdout).RootElement.GetProperty("details").EnumerateArray().ToDictionary(g => g.GetProperty("group").GetString()!);
        Assert.Equal(12, groups["g4"].GetProperty("kept").GetInt32());
        Assert.Equal(4, groups["g1"].GetProperty("kept").GetInt32()); // 8 × 0.7 = 5.6 → nearest multiple of 4
    }

    [Fact]
    public async Task UnstructuredPruningKeepsTheDenseSizeAndShrinksTheCompressedOne()
    {
        string output = Path.Combine(directory, "sparse.onnx");
        var (code, stdout, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture("mobilenet_tiny.onnx"), "--unstructured",
                                                             "--amount", "0.8", "--json", "--out", output);
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal(json.GetProperty("before").GetProperty("macs").GetInt64(), json.GetProperty("after").GetProperty("macs").GetInt64());
        Assert.True(json.GetProperty("after").GetProperty("compressedBytes").GetInt64() < json.GetProperty("before").GetProperty("compressedBytes").GetInt64() * 0.6);
        long total = json.GetProperty("details").EnumerateArray().Sum(l => l.GetProperty("elements").GetInt64());
        long zeros = json.GetProperty("details").EnumerateArray().Sum(l => l.GetProperty("zeros").GetInt64());
        Assert.Equal(Math.Round(0.8 * total), zeros);
    }

    [Fact]
    public async Task SparsityMeansZeroedWeightsNotRemovedChannels()
    {
        string sparse = Path.Combine(directory, "sparsity.onnx"), reference = Path.Combine(directory, "unstructured.onnx");
        var (code, stdout, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture("mobilenet_tiny.onnx"), "--sparsity", "0.5", "--json", "--out", sparse);
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(stdout).RootElement;
        // Every channel stays (the same MACs and parameter count); half the weights are zero, as --unstructured --amount gives.
        Assert.Equal(json.GetProperty("before").GetProperty("macs").GetInt64(), json.GetProperty("after").GetProperty("macs").GetInt64());
        Assert.Equal(json.GetProperty("before").GetProperty("params").GetInt64(), json.GetProperty("after").GetProperty("params").GetInt64());
        long total = json.GetProperty("details").EnumerateArray().Sum(l => l.GetProperty("elements").GetInt64());
        Assert.Equal(Math.Round(0.5 * total), json.GetProperty("details").EnumerateArray().Sum(l => l.GetProperty("zeros").GetInt64()));
        Assert.Equal(0, (await CliRunner.RunAsync("prune", CliRunner.Fixture("mobilenet_tiny.onnx"), "--unstructured", "--amount", "0.5", "--out", reference)).ExitCode);
        Assert.Equal(File.ReadAllBytes(reference), File.ReadAllBytes(sparse));

        var both = await CliRunner.RunAsync("prune", CliRunner.Fixture("mobilenet_tiny.onnx"), "--sparsity", "0.5", "--amount", "0.5", "--out", sparse);
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("give one", both.Error);
        var withKeep = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--sparsity", "0.5", "--keep", "g1=4", "--out", sparse);
        Assert.Equal(2, withKeep.ExitCode);
        Assert.Contains("use --amount", withKeep.Error);
    }

    [Fact]
    public async Task AModelWithNothingToPruneNamesItsUnsupportedOpsBeforeAnyOption()
    {
        // An LSTM over 8 features, 16 hidden units: no op with a pruning rule.
        var b = new OnnxModelBuilder("lstm", opset: 17);
        string x = b.Input("x", 4, 1, 8);
        var random = new Random(1);
        float[] Weights(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5))];
        string w = b.Initializer("W", [1, 64, 8], Weights(64 * 8)), r = b.Initializer("R", [1, 64, 16], Weights(64 * 16));
        var outputs = b.NodeWithOutputs("LSTM", [x, w, r], 3, "lstm", ("hidden_size", 16L));
        b.Output(outputs[1], 1, 1, 16);
        string path = Path.Combine(directory, "lstm.onnx");
        OnnxModel.Save(b.Build(), path);
        foreach (var options in new[] { new[] { "--amount", "0.5" }, ["--keep", "g0=4"], ["--amount", "0.5", "--global"] })
        {
            var (code, _, error) = await CliRunner.RunAsync(["prune", path, .. options, "--out", Path.Combine(directory, "lstm-pruned.onnx")]);
            Assert.Equal(2, code);
            string message = System.Text.RegularExpressions.Regex.Replace(error, @"\s+", " ");
            Assert.Contains("no channel of this model can be removed; unsupported ops: LSTM", message);
            Assert.DoesNotContain("say how much to prune", message);
        }
    }

    [Fact]
    public async Task AnOutputThatIsTheInputIsRefusedUnlessOverwriteIsGiven()
    {
        string model = Path.Combine(directory, "model.onnx"), link = Path.Combine(directory, "link.onnx");
        File.Copy(CliRunner.Fixture("resnet_tiny.onnx"), model);
        File.CreateSymbolicLink(link, model);
        byte[] original = File.ReadAllBytes(model);
        foreach (string output in new[] { model, link })
            foreach (var command in new[] { new[] { "prune", model, "--amount", "0.5" }, ["quantize", model, "--data", "fashion-mnist-sample"],
                                            ["finetune", model, "--data", "fashion-mnist-sample", "--epochs", "1"] })
            {
                var (code, _, error) = await CliRunner.RunAsync([.. command, "--out", output]);
                Assert.True(code == 2, $"{command[0]} --out {output}: exit {code}: {error}");
                Assert.Contains("is the input model", error);
                Assert.Equal(original, File.ReadAllBytes(model)); // nothing written
            }
        // Nor the teacher a fine-tuning distils from.
        string student = Path.Combine(directory, "student.onnx");
        File.Copy(CliRunner.Fixture("resnet_tiny.onnx"), student);
        var teacher = await CliRunner.RunAsync("finetune", student, "--teacher", model, "--data", "fashion-mnist-sample", "--epochs", "1", "--out", link);
        Assert.True(teacher.ExitCode == 2, $"finetune --out the teacher: exit {teacher.ExitCode}: {teacher.Error}");
        Assert.Contains("is the --teacher model", teacher.Error);
        Assert.Equal(original, File.ReadAllBytes(model));
        var replaced = await CliRunner.RunAsync("prune", model, "--amount", "0.5", "--out", model, "--overwrite", "--json");
        Assert.True(replaced.ExitCode == 0, replaced.Error);
        Assert.True(ModelCost.Analyze(OnnxModel.Load(model)).Macs < 874_656 / 2);
    }

    [Theory]
    [InlineData("--amount", "1.5", "must be in [0, 1)")]
    [InlineData("--keep", "g99=3", "no channel group named 'g99'")]
    [InlineData("--keep", "g1=0", "cannot keep 0")]
    [InlineData("--keep", "g6=5", "is not prunable: reaches the graph output")]
    [InlineData("--keep", "g1", "--keep takes GROUP=COUNT")]
    [InlineData("--criterion", "magic", "unknown criterion 'magic'")]
    public async Task BadRequestsFailClearlyAndWriteNothing(string option, string value, string message)
    {
        string output = Path.Combine(directory, "never.onnx");
        string[] args = option == "--criterion"
            ? ["prune", CliRunner.Fixture("resnet_tiny.onnx"), option, value, "--amount", "0.5", "--out", output]
            : ["prune", CliRunner.Fixture("resnet_tiny.onnx"), option, value, "--out", output];
        var (code, _, error) = await CliRunner.RunAsync(args);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(directory));
    }

    [Fact]
    public async Task TheGroupsListShowsWhatCanBePruned()
    {
        var (code, stdout, _) = await CliRunner.RunAsync("inspect", CliRunner.Fixture("resnet_tiny.onnx"), "--groups", "--json");
        Assert.Equal(0, code);
        var groups = JsonDocument.Parse(stdout).RootElement.GetProperty("groups").EnumerateArray().ToList();
        Assert.Equal(7, groups.Count);
        Assert.Equal(5, groups.Count(g => g.GetProperty("prunable").GetBoolean()));
        var stage1 = groups.Single(g => g.GetProperty("name").GetString() == "/conv1/Conv");
        Assert.Equal(3, stage1.GetProperty("producers").GetArrayLength());

        var table = await CliRunner.RunAsync("inspect", CliRunner.Fixture("resnet_tiny.onnx"), "--groups");
        Assert.Contains("5 of 7 groups prunable", table.Output);
    }
}

/// <summary>Issue 14's bar: every exporter fixture (fresh exports with aliased weights included) is inspected and pruned by half.</summary>
public sealed class ExporterFixtureCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("exports-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    public static IEnumerable<object[]> Fixtures() =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fixtures", "onnx"), "*.onnx").Select(Path.GetFileName).Order().Select(f => new object[] { f! });

    [Theory, MemberData(nameof(Fixtures))]
    public async Task InspectAndPruneByHalfSucceed(string fixture)
    {
        var (code, stdout, error) = await CliRunner.RunAsync("inspect", CliRunner.Fixture(fixture), "--json");
        Assert.True(code == 0, error);
        long macs = JsonDocument.Parse(stdout).RootElement.GetProperty("macs").GetInt64();
        string output = Path.Combine(directory, fixture);
        (code, _, error) = await CliRunner.RunAsync("prune", CliRunner.Fixture(fixture), "--amount", "0.5", "--out", output);
        Assert.True(code == 0, error);
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(output); // ONNX Runtime takes the pruned file
        Assert.True(ModelCost.Analyze(OnnxModel.Load(output)).Macs < macs);
    }
}
