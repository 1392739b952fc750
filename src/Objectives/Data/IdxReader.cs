namespace ParetoPrune.Objectives.Data;

/// <summary>
/// MNIST-style IDX files: images (magic 0x00000803, then count, rows, cols as big-endian u32, then
/// bytes) and labels (magic 0x00000801, then count, then one byte each). Files may be gzipped or raw;
/// gzip is recognised by its magic bytes, not the file name. Offsets in errors for a gzipped file
/// are offsets into its decompressed bytes.
/// </summary>
public static class IdxReader
{
    internal const uint ImagesMagic = 0x00000803;
    internal const uint LabelsMagic = 0x00000801;
    private const int ImagesHeader = 16;
    private const int LabelsHeader = 8;

    /// <param name="classNames">Names for labels 0..k-1; defaults to Fashion-MNIST's ten classes.</param>
    public static Dataset Read(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null)
    {
        byte[] images = DataFiles.ReadMaybeGzipped(imagesPath);
        byte[] labels = DataFiles.ReadMaybeGzipped(labelsPath);
        return Parse(images, imagesPath, labels, labelsPath, classNames, $"IDX {imagesPath} + {labelsPath}");
    }

    internal static Dataset Read(Stream images, string imagesName, Stream labels, string labelsName,
        IReadOnlyList<string>? classNames, string source) =>
        Parse(DataFiles.ReadMaybeGzipped(images, imagesName), imagesName,
            DataFiles.ReadMaybeGzipped(labels, labelsName), labelsName, classNames, source);

    private static Dataset Parse(byte[] images, string imagesName, byte[] labels, string labelsName,
        IReadOnlyList<string>? classNames, string source)
    {
        IReadOnlyList<string> names = classNames ?? KnownClassNames.FashionMnist;
        if (names.Count == 0)
            throw new ArgumentException("Class names must not be empty.", nameof(classNames));

        CheckHeader(images, imagesName, ImagesMagic, ImagesHeader, "images");
        CheckHeader(labels, labelsName, LabelsMagic, LabelsHeader, "labels");
        uint count = DataFiles.BigEndianUInt32(images, 4);
        uint rows = DataFiles.BigEndianUInt32(images, 8);
        uint cols = DataFiles.BigEndianUInt32(images, 12);
        if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535)
            throw new DatasetFormatException(imagesName, $"implausible image size {rows}×{cols} in the IDX header", 8);
        uint labelCount = DataFiles.BigEndianUInt32(labels, 4);

        ulong imageSize = (ulong)rows * cols;
        CheckLength(images, imagesName, ImagesHeader, count, imageSize, $"images of {rows}×{cols}", "image");
        CheckLength(labels, labelsName, LabelsHeader, labelCount, 1, "labels", "label");
        if (labelCount != count)
            throw new DatasetFormatException(labelsName,
                $"holds {labelCount} labels but the images file {imagesName} holds {count} images", 4);

        var labelValues = new int[count];
        for (int i = 0; i < labelValues.Length; i++)
        {
            int label = labels[LabelsHeader + i];
            if (label >= names.Count)
                throw new DatasetFormatException(labelsName,
                    $"label {label} of image {i} is out of range for {names.Count} classes (valid: 0..{names.Count - 1})",
                    LabelsHeader + i);
            labelValues[i] = label;
        }

        var pixels = new float[count * imageSize];
        DataFiles.ToUnit(images.AsSpan(ImagesHeader, pixels.Length), pixels, 0);
        return new Dataset(pixels, labelValues, names, 1, (int)rows, (int)cols, source);
    }

    private static void CheckHeader(byte[] bytes, string name, uint expectedMagic, int headerLength, string kind)
    {
        if (bytes.Length >= 4)
        {
            uint magic = DataFiles.BigEndianUInt32(bytes, 0);
            if (magic != expectedMagic)
            {
                string hint = magic == (expectedMagic == ImagesMagic ? LabelsMagic : ImagesMagic)
                    ? $" - this is an IDX {(kind == "images" ? "labels" : "images")} file; are the images and labels paths swapped?"
                    : "";
                throw new DatasetFormatException(name,
                    $"bad magic number 0x{magic:x8}, expected 0x{expectedMagic:x8} for an IDX {kind} file{hint}", 0);
            }
        }

        if (bytes.Length < headerLength)
            throw new DatasetFormatException(name,
                $"truncated IDX {kind} header: expected {headerLength} bytes, found {bytes.Length}", 0);
    }

    private static void CheckLength(byte[] bytes, string name, int headerLength, uint count, ulong recordSize,
        string what, string record)
    {
        ulong expected = count * recordSize;
        ulong actual = (ulong)(bytes.Length - headerLength);
        if (actual < expected)
        {
            ulong incomplete = actual / recordSize;
            throw new DatasetFormatException(name,
                $"truncated: the header declares {count} {what} ({expected} bytes after the {headerLength}-byte header) " +
                $"but only {actual} bytes follow; {record} {incomplete} is incomplete",
                headerLength + (long)(incomplete * recordSize));
        }

        if (actual > expected)
            throw new DatasetFormatException(name,
                $"{actual - expected} unexpected bytes after the last of the {count} {what} the header declares",
                headerLength + (long)expected);
    }
}
