namespace ParetoPrune.Objectives.Data;

/// <summary>
/// CIFAR binary files. A CIFAR-10 record is 1 label byte + 3072 pixel bytes; a CIFAR-100 record is
/// a coarse and a fine label byte + 3072 pixel bytes. Pixels are three 32×32 planes, R then G then B,
/// each row-major - already the C×H×W layout of <see cref="Dataset"/>.
/// </summary>
public static class CifarReader
{
    private const int Side = 32;
    private const int Channels = 3;
    private const int ImageBytes = Channels * Side * Side;

    /// <param name="classNames">Names for labels 0..k-1; defaults to CIFAR-10's ten classes.</param>
    public static Dataset ReadCifar10(IEnumerable<string> files, IReadOnlyList<string>? classNames = null) =>
        Read(files, labelBytes: 1, labelIndex: 0, classNames ?? KnownClassNames.Cifar10, "CIFAR-10");

    /// <param name="fine">Use the 100 fine labels (default) rather than the 20 coarse ones.</param>
    /// <param name="classNames">Names for labels 0..k-1; defaults to CIFAR-100's fine or coarse names.</param>
    public static Dataset ReadCifar100(IEnumerable<string> files, bool fine = true, IReadOnlyList<string>? classNames = null) =>
        Read(files, labelBytes: 2, labelIndex: fine ? 1 : 0,
            classNames ?? (fine ? KnownClassNames.Cifar100Fine : KnownClassNames.Cifar100Coarse),
            fine ? "CIFAR-100 (fine labels)" : "CIFAR-100 (coarse labels)");

    /// <summary>
    /// The binary distribution's folder (cifar-10-batches-bin): <c>data_batch_1.bin</c>..<c>data_batch_5.bin</c>
    /// for training or <c>test_batch.bin</c>, class names from <c>batches.meta.txt</c> when present.
    /// </summary>
    public static Dataset ReadCifar10Directory(string directory, bool train)
    {
        RequireDirectory(directory);
        string[] files = train
            ? Enumerable.Range(1, 5).Select(i => Path.Combine(directory, $"data_batch_{i}.bin")).ToArray()
            : [Path.Combine(directory, "test_batch.bin")];
        return ReadCifar10(files, NamesIfPresent(Path.Combine(directory, "batches.meta.txt")));
    }

    /// <summary>
    /// The binary distribution's folder (cifar-100-binary): <c>train.bin</c> or <c>test.bin</c>, class names
    /// from <c>fine_label_names.txt</c> / <c>coarse_label_names.txt</c> when present.
    /// </summary>
    public static Dataset ReadCifar100Directory(string directory, bool train, bool fine = true)
    {
        RequireDirectory(directory);
        string file = Path.Combine(directory, train ? "train.bin" : "test.bin");
        string namesFile = Path.Combine(directory, fine ? "fine_label_names.txt" : "coarse_label_names.txt");
        return ReadCifar100([file], fine, NamesIfPresent(namesFile));
    }

    private static Dataset Read(IEnumerable<string> files, int labelBytes, int labelIndex,
        IReadOnlyList<string> names, string format)
    {
        ArgumentNullException.ThrowIfNull(files);
        string[] paths = files.ToArray();
        if (paths.Length == 0)
            throw new ArgumentException($"No {format} files given.", nameof(files));
        if (names.Count == 0)
            throw new ArgumentException("Class names must not be empty.");

        int recordSize = labelBytes + ImageBytes;
        var contents = new List<byte[]>();
        long total = 0;
        foreach (string path in paths)
        {
            // CIFAR files are raw, but a gzipped copy costs nothing to accept.
            byte[] bytes = DataFiles.ReadMaybeGzipped(path);
            if (bytes.Length == 0)
                throw new DatasetFormatException(path, $"is empty; expected {format} records of {recordSize} bytes");
            if (bytes.Length % recordSize != 0)
            {
                long complete = bytes.Length / recordSize;
                throw new DatasetFormatException(path,
                    $"truncated {format} record {complete}: expected {recordSize} bytes, found {bytes.Length - complete * recordSize} " +
                    $"(file length {bytes.Length} is not a multiple of the record size)",
                    complete * recordSize);
            }

            contents.Add(bytes);
            total += bytes.Length / recordSize;
        }

        if (total * ImageBytes > Array.MaxLength)
            throw new ArgumentException($"{total} {format} images do not fit in one dataset.", nameof(files));
        var pixels = new float[total * ImageBytes];
        var labels = new int[total];
        int n = 0;
        for (int f = 0; f < paths.Length; f++)
        {
            byte[] bytes = contents[f];
            for (int offset = 0; offset < bytes.Length; offset += recordSize, n++)
            {
                int label = bytes[offset + labelIndex];
                if (label >= names.Count)
                    throw new DatasetFormatException(paths[f],
                        $"label {label} of record {offset / recordSize} is out of range for {names.Count} classes (valid: 0..{names.Count - 1})",
                        offset + labelIndex);
                labels[n] = label;
                DataFiles.ToUnit(bytes.AsSpan(offset + labelBytes, ImageBytes), pixels, (long)n * ImageBytes);
            }
        }

        string source = paths.Length == 1 ? $"{format} {paths[0]}" : $"{format} {string.Join(" + ", paths)}";
        return new Dataset(pixels, labels, names, Channels, Side, Side, source);
    }

    private static void RequireDirectory(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Dataset directory not found: {directory}");
    }

    private static string[]? NamesIfPresent(string path) => File.Exists(path) ? DataFiles.ReadNames(path) : null;
}
