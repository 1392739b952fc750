using Microsoft.ML;
using Microsoft.ML.Data;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Tests.Search;

/// <summary><c>mlContext.Pruning()</c>: the search with its data as ML.NET IDataViews.</summary>
public sealed class PruningCatalogTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("catalog-").FullName;
    readonly MLContext mlContext = new(seed: 0);
    static readonly Dataset Sample = DatasetCatalog.LoadEmbeddedSample().Train;
    static readonly ModelInterface Shape = new(Sample.ClassNames, 1, 28, 28, [0.28f], [0.35f]);

    public void Dispose() => Directory.Delete(directory, true);

    sealed class KeyRow
    {
        [VectorType(784)] public float[] Features { get; set; } = [];
        [KeyType(10)] public uint Label { get; set; }
    }

    sealed class IndexRow
    {
        [VectorType(784)] public float[] Image { get; set; } = [];
        public int Class { get; set; }
    }

    static float[] Pixels(Dataset d, int i) => d.Pixels.AsSpan(i * 784, 784).ToArray();

    IDataView Keyed(int from, int count) => mlContext.Data.LoadFromEnumerable(Enumerable.Range(from, count)
        .Select(i => new KeyRow { Features = Pixels(Sample, i), Label = (uint)Sample.Labels[i] })); // ML.NET holds keys 1-based; the class maps them from 0

    [Fact]
    public void ImagesComeOverExactlyWithKeyOrIndexLabels()
    {
        var keyed = mlContext.Pruning().LoadImages(Keyed(0, 50), Shape);
        Assert.Equal(Sample.Pixels.AsSpan(0, 50 * 784).ToArray(), keyed.Pixels);
        Assert.Equal(Sample.Labels[..50], keyed.Labels);
        Assert.Equal(Sample.ClassNames, keyed.ClassNames);

        var indexed = mlContext.Data.LoadFromEnumerable(Enumerable.Range(100, 20).Select(i => new IndexRow { Image = Pixels(Sample, i), Class = Sample.Labels[i] }));
        var loaded = mlContext.Pruning().LoadImages(indexed, Shape, featureColumnName: "Image", labelColumnName: "Class");
        Assert.Equal(Sample.Labels[100..120], loaded.Labels);
        Assert.Equal(Pixels(Sample, 119), loaded.Pixels.AsSpan(19 * 784, 784).ToArray());
    }

    [Fact]
    public void BadDataIsRefusedNamingTheColumnAndRow()
    {
        var catalog = mlContext.Pruning();
        Assert.Contains("no column 'Features'", Assert.Throws<ArgumentException>(() => catalog.LoadImages(
            mlContext.Data.LoadFromEnumerable(new[] { new IndexRow { Image = new float[784] } }), Shape)).Message);
        var small = new ModelInterface(Sample.ClassNames, 1, 14, 14, [0f], [1f]);
        Assert.Contains("must be a vector of 196 floats", Assert.Throws<ArgumentException>(() => catalog.LoadImages(Keyed(0, 2), small)).Message);
        var outOfRange = mlContext.Data.LoadFromEnumerable(new[] { new IndexRow { Image = new float[784], Class = 3 }, new IndexRow { Image = new float[784], Class = 12 } });
        var error = Assert.Throws<ArgumentException>(() => catalog.LoadImages(outOfRange, Shape, "Image", "Class"));
        Assert.Contains("row 1 has label 12 in 'Class'", error.Message);
    }

    [Fact]
    public async Task ASearchRunsOnIDataViewsAndGivesTransformers()
    {
        string model = Path.Combine(directory, "tiny.onnx");
        OnnxModel.Save(Shape.Prepend(Architectures.SimpleCnn(1, 28, 10, [8, 8, 16, 16], seed: 3)), model);
        var options = new PruningSearchOptions
        {
            OutputDirectory = Path.Combine(directory, "run"), Trials = 3, Sampler = SamplerKind.Random, Threads = 2,
            Fidelity = new FidelityOptions { RecalibrationBatches = 1, ScreeningSteps = 1, BatchSize = 32, PromoteCount = 1, PromotionSteps = 1, FinalCount = 1, FinalStepsPerEpoch = 1 },
        };
        var result = await mlContext.Pruning().SearchAsync(model, Keyed(0, 600), Keyed(600, 200), options, validationLimit: 100);

        Assert.Equal(StudyStatus.Finished, result.Status);
        Assert.Equal(3, result.Trials.Count);
        Assert.Contains("IDataView (600 training / 200 test images)", result.Definition.Data);
        var best = Assert.Single(result.Front);
        // The chosen model in an ML.NET pipeline over the same IDataView: its accuracy there is the search's test accuracy.
        var test = Keyed(600, 200);
        var input = mlContext.Transforms.CopyColumns("input", "Features").Fit(test).Transform(test);
        var scores = result.CreateTransformer(best).Transform(input).GetColumn<float[]>("output").ToList();
        double accuracy = scores.Select((s, i) => Array.IndexOf(s, s.Max()) == Sample.Labels[600 + i] ? 1.0 : 0.0).Average();
        Assert.Equal(best.TestAccuracy!.Value, accuracy, 6);
    }
}
