using System.Text.Json;
using ParetoPrune.Objectives.Onnx;

namespace ParetoPrune.Cli.Tests;

/// <summary>train → prune (data-driven) → finetune with distillation, through the command line, on the embedded sample.</summary>
public sealed class TrainCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("train-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    static readonly string[] Budget = ["--data", "fashion-mnist-sample", "--epochs", "1", "--max-steps-per-epoch", "4", "--batch-size", "32",
                                       "--validation", "0.05", "--threads", "2", "--json"];

    [Fact]
    public async Task TrainPruneAndFinetuneEndToEnd()
    {
        string baseModel = Path.Combine(directory, "base.onnx");
        var train = await CliRunner.RunAsync(["train", "--arch", "simplecnn", "--lr", "0.02", "--out", baseModel, .. Budget]);
        Assert.True(train.ExitCode == 0, train.Error);
        var summary = JsonDocument.Parse(train.Output).RootElement;
        Assert.Equal(1, summary.GetProperty("epochs").GetInt32());
        Assert.InRange(summary.GetProperty("testAccuracy").GetDouble(), 0.2, 1.0); // 4 steps already beat chance (0.1)
        Assert.Contains("test set (2000 images)", summary.GetProperty("provenance").GetString());
        Assert.Contains("epoch 1/1", train.Error); // progress goes to standard error when standard output is JSON

        // The written model normalises inside the graph and declares its interface for ML.NET apps.
        var model = OnnxModel.Load(baseModel);
        var declared = ModelInterface.Read(model)!;
        Assert.Equal(10, declared.ClassNames.Count);
        Assert.Equal("T-shirt/top", declared.ClassNames[0]);
        Assert.Equal(["Sub", "Div"], model.Graph.Node.Take(2).Select(n => n.OpType));

        string pruned = Path.Combine(directory, "pruned.onnx");
        var prune = await CliRunner.RunAsync("prune", baseModel, "--criterion", "taylor", "--data", "fashion-mnist-sample", "--importance-batches", "1",
                                             "--amount", "0.5", "--json", "--out", pruned);
        Assert.True(prune.ExitCode == 0, prune.Error);
        Assert.True(ModelCost.Analyze(OnnxModel.Load(pruned)).Macs < ModelCost.Analyze(model).Macs / 2);

        string tuned = Path.Combine(directory, "tuned.onnx");
        var finetune = await CliRunner.RunAsync(["finetune", pruned, "--teacher", baseModel, "--out", tuned, .. Budget]);
        Assert.True(finetune.ExitCode == 0, finetune.Error);
        Assert.Equal(ModelCost.Analyze(OnnxModel.Load(pruned)).Macs, ModelCost.Analyze(OnnxModel.Load(tuned)).Macs);
        Assert.NotNull(ModelInterface.Read(OnnxModel.Load(tuned)));
    }

    [Fact]
    public async Task MistakesAreExplained()
    {
        var noData = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--criterion", "lrp", "--amount", "0.5",
                                              "--out", Path.Combine(directory, "x.onnx"));
        Assert.Equal(2, noData.ExitCode);
        Assert.Contains("give --data", noData.Error);

        // resnet_tiny takes 3×16×16 images; Fashion-MNIST has 1×28×28.
        var mismatch = await CliRunner.RunAsync("prune", CliRunner.Fixture("resnet_tiny.onnx"), "--criterion", "taylor", "--data",
                                                "fashion-mnist-sample", "--amount", "0.5", "--out", Path.Combine(directory, "x.onnx"));
        Assert.Equal(2, mismatch.ExitCode);
        Assert.Contains("the model takes input 1x3x16x16 but the data has images of 1x28x28", mismatch.Error);

        var arch = await CliRunner.RunAsync(["train", "--arch", "alexnet", "--out", Path.Combine(directory, "a.onnx"), .. Budget]);
        Assert.Equal(2, arch.ExitCode);
        Assert.Contains("unknown architecture 'alexnet'", arch.Error);
        Assert.Empty(Directory.GetFiles(directory));
    }
}
