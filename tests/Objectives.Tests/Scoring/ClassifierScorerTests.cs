using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Scoring;

namespace ParetoPrune.Objectives.Tests.Scoring;

/// <summary>ML.NET's ApplyOnnxModel pipeline against the same model run directly in ONNX Runtime.</summary>
public sealed class ClassifierScorerTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("scorer-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    /// <summary>A linear classifier on 1×28×28 images whose weights are the centred class means of training images:
    /// right often enough, wrong often enough, for the comparison to mean something.</summary>
    string LinearModel(int seed)
    {
        var train = DatasetCatalog.LoadEmbeddedSample().Train;
        var mean = new double[784];
        var classMeans = new double[10, 784];
        for (int i = 0; i < train.Count; i++)
        {
            var image = train.Image(i);
            for (int p = 0; p < 784; p++) { mean[p] += image[p] / train.Count; classMeans[train.Labels[i], p] += image[p] / 1000.0; }
        }
        var weights = new float[10 * 784];
        for (int c = 0; c < 10; c++) for (int p = 0; p < 784; p++) weights[c * 784 + p] = (float)(classMeans[c, p] - mean[p]) * 0.05f * (1 + seed * 0.01f); // modest logits: float probabilities do not underflow
        var b = new OnnxModelBuilder("linear", 13);
        string x = b.Input("input", -1, 1, 28, 28);
        string flat = b.Node("Flatten", [x], "flatten");
        string logits = b.Node("Gemm", [flat, b.Initializer("w", [10, 784], weights), b.Initializer("b", [10], new float[10])], "fc", ("transB", 1L));
        b.Output(logits, -1, 10);
        string path = Path.Combine(directory, $"linear{seed}.onnx");
        var model = b.Build();
        // Rename the output to something other than "output" to check that the pipeline follows the model's names.
        model.Graph.Output[0].Name = logits;
        OnnxModel.Save(model, path);
        return path;
    }

    static Dataset Sample(int count) => DatasetCatalog.LoadEmbeddedSample().Test.Take(Enumerable.Range(0, count).Select(i => i * 9 % 2000).ToArray());

    [Fact]
    public void MlNetMetricsEqualThoseComputedFromOnnxRuntimeOutputs()
    {
        string path = LinearModel(3);
        var data = Sample(300);
        var metrics = new ClassifierScorer(new MLContext(seed: 1)).Score(path, data, "test");

        // Independently: ONNX Runtime on each image, top-1, top-5, log-loss and the confusion matrix by hand.
        using var session = new InferenceSession(path);
        int top1 = 0, top5 = 0;
        double logLoss = 0;
        var confusion = new int[10, 10];
        for (int i = 0; i < data.Count; i++)
        {
            var tensor = new DenseTensor<float>(data.Image(i).ToArray(), [1, 1, 28, 28]);
            using var result = session.Run([NamedOnnxValue.CreateFromTensor("input", tensor)]);
            var logits = result.First().AsTensor<float>().ToArray();
            int label = data.Labels[i];
            int predicted = Array.IndexOf(logits, logits.Max());
            confusion[label, predicted]++;
            if (predicted == label) top1++;
            if (logits.Count(v => v > logits[label]) < 5) top5++;
            double max = logits.Max();
            double logSum = max + Math.Log(logits.Sum(v => Math.Exp(v - max)));
            logLoss += logSum - logits[label];
        }
        Assert.Equal((double)top1 / data.Count, metrics.Top1, 10);
        Assert.Equal((double)top5 / data.Count, metrics.Top5, 10);
        Assert.Equal(logLoss / data.Count, metrics.LogLoss, 4);
        for (int t = 0; t < 10; t++)
            for (int p = 0; p < 10; p++) Assert.Equal(confusion[t, p], metrics.ConfusionMatrix[t][p]);
        double macro = Enumerable.Range(0, 10).Average(t => (double)confusion[t, t] / Enumerable.Range(0, 10).Sum(p => confusion[t, p]));
        Assert.Equal(macro, metrics.MacroAccuracy, 10);
        Assert.Equal(300, metrics.Count);
        Assert.Equal("test", metrics.Provenance.Split);
        Assert.InRange(metrics.Top1, 0.05, 0.95); // neither trivial nor perfect, so the comparison means something
    }

    [Fact]
    public void AMismatchedModelIsRefused()
    {
        var b = new OnnxModelBuilder("five", 13);
        string x = b.Input("input", -1, 1, 28, 28);
        b.Output(b.Node("Gemm", [b.Node("Flatten", [x], "f"), b.Initializer("w", [5, 784], new float[5 * 784])], "fc", ("transB", 1L)), -1, 5);
        string path = Path.Combine(directory, "five.onnx");
        OnnxModel.Save(b.Build(), path);
        var error = Assert.Throws<ArgumentException>(() => new ClassifierScorer(new MLContext()).Score(path, Sample(20), "test"));
        Assert.Contains("the model returns [1x5] but the data has 10 classes", error.Message);
    }
}
