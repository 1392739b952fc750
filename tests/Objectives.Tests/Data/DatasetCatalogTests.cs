using System.IO.Compression;
using ParetoPrune.Objectives.Data;
using SkiaSharp;

namespace ParetoPrune.Objectives.Tests.Data;

public sealed class DatasetCatalogTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void EmbeddedSampleIsStratifiedFashionMnist()
    {
        TrainTest sample = DatasetCatalog.LoadEmbeddedSample();
        AssertIsSample(sample);
        Assert.Contains("embedded", sample.Train.Source);
        Assert.Contains("embedded", sample.Description);
    }

    [Fact]
    public void LoadFashionMnistReadsAGivenDirectoryWithEitherSuffix()
    {
        // A copy of the embedded sample: training files gzipped with .gz, test files raw without suffix.
        CopySampleResource("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", decompress: false);
        CopySampleResource("train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz", decompress: false);
        CopySampleResource("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte", decompress: true);
        CopySampleResource("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte", decompress: true);

        TrainTest loaded = DatasetCatalog.LoadFashionMnist(_dir.Path);

        AssertIsSample(loaded);
        Assert.Contains(_dir.Path, loaded.Train.Source);
        Assert.Contains(_dir.Path, loaded.Description);
        Assert.Equal(DatasetCatalog.LoadEmbeddedSample().Test.Pixels, loaded.Test.Pixels);
    }

    [Fact]
    public void LoadFashionMnistFallsBackToTheEmbeddedSample()
    {
        TrainTest loaded = DatasetCatalog.LoadFashionMnist(null, Path.Combine(_dir.Path, "not-installed"));
        AssertIsSample(loaded);
        Assert.Contains("embedded", loaded.Description);
    }

    [FactIfDirectoryExists(DatasetCatalog.DebianFashionMnistDirectory)]
    public void LoadFashionMnistUsesTheInstalledFullSet()
    {
        TrainTest full = DatasetCatalog.LoadFashionMnist();
        Assert.Equal(60_000, full.Train.Count);
        Assert.Equal(10_000, full.Test.Count);
        Assert.All(full.Train.ClassCounts(), n => Assert.Equal(6_000, n));
        Assert.Contains(DatasetCatalog.DebianFashionMnistDirectory, full.Description);
    }

    [Fact]
    public void MissingIdxFileNamesThePath()
    {
        CopySampleResource("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", decompress: false);
        var e = Assert.Throws<FileNotFoundException>(() => DatasetCatalog.LoadFashionMnist(_dir.Path));
        Assert.Equal(_dir.File("train-labels-idx1-ubyte"), e.FileName);
        Assert.Contains(".gz", e.Message);
    }

    [Fact]
    public void LoadDetectsIdxWithClassesFile()
    {
        Dataset d = TestData.Make(count: 6, classes: 3);
        IdxWriter.Write(_dir.File("train-images-idx3-ubyte.gz"), _dir.File("train-labels-idx1-ubyte.gz"), d, gzip: true);
        IdxWriter.Write(_dir.File("t10k-images-idx3-ubyte"), _dir.File("t10k-labels-idx1-ubyte"), d.Take([0, 1]), gzip: false);
        File.WriteAllLines(_dir.File("classes.txt"), ["zero", "one", "two"]);

        TrainTest loaded = DatasetCatalog.Load(_dir.Path);

        Assert.Equal((6, 2), (loaded.Train.Count, loaded.Test.Count));
        Assert.Equal(new[] { "zero", "one", "two" }, loaded.Train.ClassNames);
        Assert.StartsWith("IDX", loaded.Description);
    }

    [Fact]
    public void LoadDetectsCifar10()
    {
        for (int b = 1; b <= 5; b++)
            TestData.WriteCifar(_dir.File($"data_batch_{b}.bin"), [[(byte)b]], [TestData.CifarImage(b)]);
        TestData.WriteCifar(_dir.File("test_batch.bin"), [[0], [9]], [TestData.CifarImage(0), TestData.CifarImage(9)]);

        TrainTest loaded = DatasetCatalog.Load(_dir.Path);

        Assert.Equal((5, 2), (loaded.Train.Count, loaded.Test.Count));
        Assert.Equal(new[] { 1, 2, 3, 4, 5 }, loaded.Train.Labels);
        Assert.StartsWith("CIFAR-10", loaded.Description);
    }

    [Fact]
    public void LoadDetectsCifar100InItsDistributionFolder()
    {
        string dir = Path.Combine(_dir.Path, "cifar-100-binary");
        Directory.CreateDirectory(dir);
        TestData.WriteCifar(Path.Combine(dir, "train.bin"), [[1, 50]], [TestData.CifarImage(0)]);
        TestData.WriteCifar(Path.Combine(dir, "test.bin"), [[2, 60]], [TestData.CifarImage(1)]);

        TrainTest loaded = DatasetCatalog.Load(_dir.Path);

        Assert.Equal(new[] { 50 }, loaded.Train.Labels);
        Assert.Equal(100, loaded.Train.ClassNames.Count);
        Assert.StartsWith("CIFAR-100", loaded.Description);
    }

    [Fact]
    public void LoadDetectsImageFolders()
    {
        foreach (string split in new[] { "train", "test" })
            foreach (string cls in new[] { "cat", "dog" })
                ImageFolderTests.WriteImage(_dir.Path, $"{split}/{cls}/a.png", 5, 5, SKColors.Blue, SKEncodedImageFormat.Png);

        TrainTest loaded = DatasetCatalog.Load(_dir.Path, height: 3, width: 4, channels: 1);

        Assert.Equal((2, 2), (loaded.Train.Count, loaded.Test.Count));
        Assert.Equal((1, 3, 4), (loaded.Test.Channels, loaded.Test.Height, loaded.Test.Width));
        Assert.Equal(new[] { "cat", "dog" }, loaded.Test.ClassNames);
    }

    [Fact]
    public void LoadRejectsImageFoldersWithDifferentClasses()
    {
        ImageFolderTests.WriteImage(_dir.Path, "train/cat/a.png", 2, 2, SKColors.Blue, SKEncodedImageFormat.Png);
        ImageFolderTests.WriteImage(_dir.Path, "test/dog/a.png", 2, 2, SKColors.Blue, SKEncodedImageFormat.Png);
        var e = Assert.Throws<DatasetFormatException>(() => DatasetCatalog.Load(_dir.Path));
        Assert.Contains("different class folders", e.Message);
    }

    [Fact]
    public void LoadExplainsAnUnrecognisedDirectory()
    {
        File.WriteAllText(_dir.File("something.csv"), "1,2,3");
        var e = Assert.Throws<DatasetFormatException>(() => DatasetCatalog.Load(_dir.Path));
        Assert.Equal(_dir.Path, e.FilePath);
        Assert.Contains("no dataset recognised", e.Message);
        Assert.Contains("data_batch_1.bin", e.Message);
    }

    [Fact]
    public void LoadOfAMissingDirectoryNamesIt()
    {
        string missing = _dir.File("absent");
        var e = Assert.Throws<DirectoryNotFoundException>(() => DatasetCatalog.Load(missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void LoadAcceptsTheSampleByName() =>
        Assert.Equal(10_000, DatasetCatalog.Load("fashion-mnist-sample").Train.Count);

    private static void AssertIsSample(TrainTest sample)
    {
        Assert.Equal(10_000, sample.Train.Count);
        Assert.Equal(2_000, sample.Test.Count);
        Assert.All(sample.Train.ClassCounts(), n => Assert.Equal(1_000, n));
        Assert.All(sample.Test.ClassCounts(), n => Assert.Equal(200, n));
        Assert.Equal((1, 28, 28), (sample.Train.Channels, sample.Train.Height, sample.Train.Width));
        Assert.Equal("T-shirt/top", sample.Train.ClassNames[0]);
        Assert.InRange(sample.Train.Pixels.Max(), 0.99f, 1f);
        Assert.Equal(0f, sample.Train.Pixels.Min());
    }

    private void CopySampleResource(string resource, string fileName, bool decompress)
    {
        using Stream stream = typeof(DatasetCatalog).Assembly.GetManifestResourceStream("fashion-mnist-sample/" + resource)
            ?? throw new InvalidOperationException($"resource {resource} missing");
        using FileStream file = File.Create(_dir.File(fileName));
        if (decompress)
        {
            using var gzip = new GZipStream(stream, CompressionMode.Decompress);
            gzip.CopyTo(file);
        }
        else
        {
            stream.CopyTo(file);
        }
    }
}
