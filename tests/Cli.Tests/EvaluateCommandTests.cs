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

/// <summary>The issue's case: a shipped model trained on Fashion-MNIST's training images, validated on the embedded sample,
/// whose training images are among them.</summary>
public sealed class HonestValidationTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("honest-validation-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    string Shipped() => CliRunner.ShippedModel(directory);

    [Fact]
    public async Task ValidationKeepsToImagesTheModelNeverSawAndSaysSoWhenItCannotKnow()
    {
        string shipped = Shipped();
        var validation = await CliRunner.RunAsync("evaluate", shipped, "--data", "fashion-mnist-sample", "--split", "validation", "--json");
        Assert.True(validation.ExitCode == 0, validation.Error);
        var accuracy = JsonDocument.Parse(validation.Output).RootElement.GetProperty("accuracy");
        Assert.Contains("of its test images", accuracy.GetProperty("split").GetString());
        Assert.Equal(JsonValueKind.Null, accuracy.GetProperty("caveat").ValueKind);
        var test = await CliRunner.RunAsync("evaluate", shipped, "--data", "fashion-mnist-sample", "--json");
        double testAccuracy = JsonDocument.Parse(test.Output).RootElement.GetProperty("accuracy").GetProperty("top1").GetDouble();
        Assert.InRange(accuracy.GetProperty("top1").GetDouble(), testAccuracy - 0.03, testAccuracy + 0.03);

        // What the sample's own hold-out would have read: images the model trained on, so several points higher.
        var sample = DatasetCatalog.LoadEmbeddedSample();
        var seen = DatasetSplit.Stratified(sample.Train, 0.1, 0).Validation;
        double inflated = new Objectives.Scoring.ClassifierScorer(new Microsoft.ML.MLContext(seed: 0)).Score(shipped, seen, "validation").Top1;
        Assert.True(inflated > testAccuracy + 0.02, $"{inflated} on seen images against {testAccuracy} on the test set");

        // A model that records no training cannot be vouched for: said in the output.
        string foreign = Path.Combine(directory, "foreign.onnx");
        OnnxModel.Save(Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 3), foreign);
        var unknown = await CliRunner.RunAsync("evaluate", foreign, "--data", "fashion-mnist-sample", "--split", "validation");
        Assert.True(unknown.ExitCode == 0, unknown.Error);
        Assert.Contains("warning: the model records no training images", unknown.Output);
    }

    [Fact]
    public async Task TrainRecordsItsImagesAndASearchOnTheSameDataRanksOnWhatTrainingHeldOut()
    {
        string model = Path.Combine(directory, "trained.onnx");
        var train = await CliRunner.RunAsync("train", "--arch", "simplecnn", "--out", model, "--data", "fashion-mnist-sample", "--epochs", "1",
                                             "--max-steps-per-epoch", "2", "--batch-size", "32", "--validation", "0.2", "--seed", "4", "--threads", "2");
        Assert.True(train.ExitCode == 0, train.Error);
        var record = Assert.Single(TrainingImages.Read(OnnxModel.Load(model)));
        var sample = DatasetCatalog.LoadEmbeddedSample();
        Assert.Equal((sample.Train.Fingerprint, 0.2, 4, DatasetCatalog.FashionMnistFamily), (record.Fingerprint, record.HeldOutFraction, record.Seed, record.Family));

        string run = Path.Combine(directory, "run");
        var search = await CliRunner.RunAsync("search", "--model", model, "--out", run, "--data", "fashion-mnist-sample", "--trials", "2", "--sampler", "random",
                                              "--recalibration-batches", "1", "--screening-steps", "1", "--promote", "1", "--promotion-steps", "1", "--final", "1",
                                              "--final-max-steps-per-epoch", "1", "--batch-size", "32", "--threads", "2", "--validation-limit", "100");
        Assert.True(search.ExitCode == 0, search.Error);
        Assert.Contains("held out (fraction 0.2, seed 4), not the requested fraction 0.1 and seed 0", System.Text.RegularExpressions.Regex.Replace(search.Output, @"\s+", " "));
        Assert.DoesNotContain("warning", search.Output);
        // The exported model fine-tuned on the same images its training did (the same hold-out): nothing new to record, so
        // the next search on it keeps to the same unseen images.
        var exported = Directory.GetFiles(Path.Combine(run, "models"), "trial-*.onnx").Single();
        Assert.Equal([record], TrainingImages.Read(OnnxModel.Load(exported)));
    }
}
