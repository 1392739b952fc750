using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Scoring;
using ParetoPrune.Optimizer.Networks;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// Accuracy scoring speed: the ML.NET ApplyOnnxModel pipeline (what ClassifierScorer runs) against ONNX Runtime called
/// directly on the same model and images, per image and in batches of 128; all in one run, 3 rounds each.
/// </summary>
static class ScoringBenchmark
{
    public static void Run()
    {
        var data = DatasetCatalog.LoadEmbeddedSample().Test; // 2,000 images, 1×28×28
        string directory = Directory.CreateTempSubdirectory("scoring-bench-").FullName;
        Console.WriteLine($"{data.Count} Fashion-MNIST test images; ONNX Runtime {OrtEnv.Instance().GetVersionString()}, default session options\n");
        Console.WriteLine("| model | ML.NET pipeline + evaluator | ML.NET ApplyOnnxModel only | ORT direct, batch 1 | ORT direct, batch 128 | ORT batch 1, 1 thread | ORT batch 128, 1 thread | ML.NET / ORT batch 1 | ML.NET / ORT batch 128 |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        try
        {
            foreach (var (name, model) in new[] { ("SimpleCnn", Architectures.SimpleCnn(1, 28, 10)), ("ResNet-20", Architectures.CifarResNet(20, 1, 28, 10)) })
            {
                string path = Path.Combine(directory, name + ".onnx");
                OnnxModel.Save(model, path);
                double full = Best(() => new ClassifierScorer(new MLContext(0)).Score(path, data, "test"));
                double applyOnly = Best(() => ApplyOnly(path, data));
                double single = Best(() => Direct(path, data, 1));
                double batched = Best(() => Direct(path, data, 128));
                double singleOneThread = Best(() => Direct(path, data, 1, threads: 1));
                double batchedOneThread = Best(() => Direct(path, data, 128, threads: 1));
                string Rate(double seconds) => $"{data.Count / seconds:0} img/s";
                Console.WriteLine($"| {name} | {Rate(full)} | {Rate(applyOnly)} | {Rate(single)} | {Rate(batched)} | {Rate(singleOneThread)} | {Rate(batchedOneThread)} | {full / single:0.00} | {full / batched:0.00} |");
            }
        }
        finally { Directory.Delete(directory, true); }
    }

    static double Best(Action action)
    {
        action();
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return best;
    }

    static void ApplyOnly(string path, Dataset data)
    {
        var ml = new MLContext(0);
        var scorer = new ClassifierScorer(ml);
        var view = scorer.ToDataView(data, "input");
        var transformed = ml.Transforms.ApplyOnnxModel(["output"], ["input"], path,
            new Dictionary<string, int[]> { ["input"] = [1, 1, 28, 28] }, gpuDeviceId: null, fallbackToCpu: true).Fit(view).Transform(view);
        using var cursor = transformed.GetRowCursor(transformed.Schema.Where(c => c.Name == "output"));
        var getter = cursor.GetGetter<Microsoft.ML.Data.VBuffer<float>>(transformed.Schema["output"]);
        var value = default(Microsoft.ML.Data.VBuffer<float>);
        while (cursor.MoveNext()) getter(ref value);
    }

    static void Direct(string path, Dataset data, int batch, int? threads = null)
    {
        using var options = new SessionOptions();
        if (threads is { } t) options.IntraOpNumThreads = t;
        using var session = new InferenceSession(path, options);
        for (int start = 0; start < data.Count; start += batch)
        {
            int n = Math.Min(batch, data.Count - start);
            var tensor = new DenseTensor<float>(data.Pixels.AsMemory(start * data.ImageSize, n * data.ImageSize), [n, 1, 28, 28]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", tensor)]);
            _ = results.First().AsTensor<float>()[0, 0];
        }
    }
}
