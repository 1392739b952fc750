using System.Reflection;

namespace ParetoPrune.Objectives.Data;

/// <summary>A training set, its test set, and a one-line description of where they came from.</summary>
/// <param name="Family">The published dataset the images come from (e.g. "fashion-mnist"), whose training split
/// <see cref="Train"/> draws from and whose test split <see cref="Test"/> draws from, whether all of it or a sample; null
/// when unknown. Two sets of one family may share training images.</param>
public sealed record TrainTest(Dataset Train, Dataset Test, string Description, string? Family = null);

/// <summary>Finds and loads datasets by directory, detecting the format from the files present.</summary>
public static class DatasetCatalog
{
    /// <summary>Where the Debian package <c>dataset-fashion-mnist</c> installs the full set.</summary>
    public const string DebianFashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    private const string SampleResourcePrefix = "fashion-mnist-sample/";

    /// <summary>The family of the full Fashion-MNIST and of the embedded sample (drawn from its training and test splits).</summary>
    public const string FashionMnistFamily = "fashion-mnist";

    /// <summary>
    /// Fashion-MNIST from <paramref name="directory"/> when given; otherwise the full set from
    /// <see cref="DebianFashionMnistDirectory"/> when installed; otherwise the embedded sample
    /// (1,000 training and 200 test images per class), so the tool always has data to run on.
    /// </summary>
    public static TrainTest LoadFashionMnist(string? directory = null) =>
        LoadFashionMnist(directory, DebianFashionMnistDirectory);

    internal static TrainTest LoadFashionMnist(string? directory, string installedDirectory)
    {
        if (directory is not null)
            return LoadIdxDirectory(directory, KnownClassNames.FashionMnist, "Fashion-MNIST") with { Family = FashionMnistFamily };
        return Directory.Exists(installedDirectory)
            ? LoadIdxDirectory(installedDirectory, KnownClassNames.FashionMnist, "Fashion-MNIST") with { Family = FashionMnistFamily }
            : LoadEmbeddedSample();
    }

    /// <summary>
    /// The stratified Fashion-MNIST sample embedded in this assembly: 10,000 training and 2,000 test
    /// images (made by tools/MakeSample/make_sample.py; see data/fashion-mnist-sample/README.md).
    /// </summary>
    public static TrainTest LoadEmbeddedSample()
    {
        Dataset train = ReadSample("train");
        Dataset test = ReadSample("t10k");
        return new TrainTest(train, test,
            $"embedded Fashion-MNIST sample: {Describe(train, test)} (1,000 / 200 per class, stratified from the full set)", FashionMnistFamily);
    }

    /// <summary>
    /// Loads a train/test pair from a directory holding one of: IDX files
    /// (<c>train-images-idx3-ubyte[.gz]</c>, <c>train-labels-idx1-ubyte[.gz]</c>, <c>t10k-*</c>; class names
    /// from <c>classes.txt</c> if present, else Fashion-MNIST's), CIFAR-10 binaries (<c>data_batch_1.bin</c>...),
    /// CIFAR-100 binaries (<c>train.bin</c>, <c>test.bin</c>; fine labels), or an image folder with
    /// <c>train/</c> and <c>test/</c> class sub-folders (read at <paramref name="height"/>×<paramref name="width"/>
    /// with <paramref name="channels"/> channels). <c>fashion-mnist</c> and <c>fashion-mnist-sample</c>
    /// name <see cref="LoadFashionMnist(string?)"/> and <see cref="LoadEmbeddedSample"/>.
    /// </summary>
    public static TrainTest Load(string spec, int height = 32, int width = 32, int channels = 3)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        if (!Directory.Exists(spec))
        {
            if (spec.Equals("fashion-mnist", StringComparison.OrdinalIgnoreCase))
                return LoadFashionMnist();
            if (spec.Equals("fashion-mnist-sample", StringComparison.OrdinalIgnoreCase))
                return LoadEmbeddedSample();
            throw new DirectoryNotFoundException(
                $"Dataset directory not found: {spec} (give a dataset directory, 'fashion-mnist' or 'fashion-mnist-sample')");
        }

        if (FindIdx(spec, "train-images-idx3-ubyte") is not null)
        {
            string classes = Path.Combine(spec, "classes.txt");
            IReadOnlyList<string> names = File.Exists(classes) ? DataFiles.ReadNames(classes) : KnownClassNames.FashionMnist;
            return LoadIdxDirectory(spec, names, "IDX");
        }

        foreach (string dir in new[] { spec, Path.Combine(spec, "cifar-10-batches-bin") })
        {
            if (File.Exists(Path.Combine(dir, "data_batch_1.bin")))
                return Pair(CifarReader.ReadCifar10Directory(dir, train: true),
                    CifarReader.ReadCifar10Directory(dir, train: false), $"CIFAR-10 from {dir}");
        }

        foreach (string dir in new[] { spec, Path.Combine(spec, "cifar-100-binary") })
        {
            if (File.Exists(Path.Combine(dir, "train.bin")))
                return Pair(CifarReader.ReadCifar100Directory(dir, train: true),
                    CifarReader.ReadCifar100Directory(dir, train: false), $"CIFAR-100 (fine labels) from {dir}");
        }

        string trainFolder = Path.Combine(spec, "train"), testFolder = Path.Combine(spec, "test");
        if (Directory.Exists(trainFolder) && Directory.Exists(testFolder))
        {
            Dataset train = ImageFolderReader.Read(trainFolder, height, width, channels);
            Dataset test = ImageFolderReader.Read(testFolder, height, width, channels);
            // Labels come from sorted folder names, so both splits must have the same class folders.
            if (!train.ClassNames.SequenceEqual(test.ClassNames, StringComparer.Ordinal))
                throw new DatasetFormatException(spec,
                    $"train/ and test/ have different class folders ([{string.Join(", ", train.ClassNames)}] vs " +
                    $"[{string.Join(", ", test.ClassNames)}]), so their labels would not match");
            return Pair(train, test, $"image folder {spec}");
        }

        throw new DatasetFormatException(spec,
            "no dataset recognised: expected IDX files (train-images-idx3-ubyte[.gz] ...), CIFAR-10 binaries " +
            "(data_batch_1.bin ...), CIFAR-100 binaries (train.bin, test.bin) or train/ and test/ image folders");
    }

    private static TrainTest LoadIdxDirectory(string directory, IReadOnlyList<string> names, string format)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Dataset directory not found: {directory}");
        Dataset train = IdxReader.Read(RequireIdx(directory, "train-images-idx3-ubyte"),
            RequireIdx(directory, "train-labels-idx1-ubyte"), names);
        Dataset test = IdxReader.Read(RequireIdx(directory, "t10k-images-idx3-ubyte"),
            RequireIdx(directory, "t10k-labels-idx1-ubyte"), names);
        return Pair(train, test, $"{format} from {directory}");
    }

    private static TrainTest Pair(Dataset train, Dataset test, string origin) =>
        new(train, test, $"{origin}: {Describe(train, test)}");

    private static string Describe(Dataset train, Dataset test) =>
        $"{train.Count} training / {test.Count} test images of {train.Height}×{train.Width}×{train.Channels}, {train.ClassNames.Count} classes";

    private static string? FindIdx(string directory, string stem) =>
        new[] { stem, stem + ".gz" }.Select(name => Path.Combine(directory, name)).FirstOrDefault(File.Exists);

    private static string RequireIdx(string directory, string stem)
    {
        string? path = FindIdx(directory, stem);
        if (path is null)
        {
            string expected = Path.Combine(directory, stem);
            throw new FileNotFoundException($"Dataset file not found: {expected} (or {expected}.gz)", expected);
        }

        return path;
    }

    private static Dataset ReadSample(string split)
    {
        string imagesName = $"{SampleResourcePrefix}{split}-images-idx3-ubyte.gz";
        string labelsName = $"{SampleResourcePrefix}{split}-labels-idx1-ubyte.gz";
        using Stream images = OpenResource(imagesName);
        using Stream labels = OpenResource(labelsName);
        return IdxReader.Read(images, imagesName, labels, labelsName, KnownClassNames.FashionMnist,
            $"embedded Fashion-MNIST sample ({imagesName})");
    }

    private static Stream OpenResource(string name)
    {
        Assembly assembly = typeof(DatasetCatalog).Assembly;
        return assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException(
                $"Embedded resource '{name}' is missing from {assembly.GetName().Name}; it is built from data/fashion-mnist-sample/*.gz.");
    }
}
