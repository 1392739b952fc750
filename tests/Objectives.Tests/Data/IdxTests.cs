using System.Buffers.Binary;
using System.IO.Compression;
using ParetoPrune.Objectives.Data;

namespace ParetoPrune.Objectives.Tests.Data;

public sealed class IdxTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(false, "images.idx", "labels.idx")]
    [InlineData(true, "images.gz", "labels.gz")]
    [InlineData(true, "images-idx3-ubyte", "labels-idx1-ubyte")] // gzipped despite the name: found by magic
    public void RoundTrips(bool gzip, string imagesName, string labelsName)
    {
        Dataset original = TestData.Make(count: 7, classes: 3, height: 4, width: 5);
        IdxWriter.Write(_dir.File(imagesName), _dir.File(labelsName), original, gzip);

        byte[] head = File.ReadAllBytes(_dir.File(imagesName))[..2];
        Assert.Equal(gzip, head[0] == 0x1f && head[1] == 0x8b);

        Dataset read = IdxReader.Read(_dir.File(imagesName), _dir.File(labelsName), ["a", "b", "c"]);
        Assert.Equal((7, 1, 4, 5), (read.Count, read.Channels, read.Height, read.Width));
        Assert.Equal(original.Pixels, read.Pixels);
        Assert.Equal(original.Labels, read.Labels);
        Assert.Equal(new[] { "a", "b", "c" }, read.ClassNames);
        Assert.Contains(_dir.File(imagesName), read.Source);
    }

    [Fact]
    public void DefaultsToFashionMnistClassNames()
    {
        WriteRaw(Images(2, 3, 3), Labels(9, 0));
        Dataset read = IdxReader.Read(_dir.File("i"), _dir.File("l"));
        Assert.Equal(10, read.ClassNames.Count);
        Assert.Equal("T-shirt/top", read.ClassNames[0]);
        Assert.Equal("Ankle boot", read.ClassNames[9]);
        Assert.Equal(new[] { 9, 0 }, read.Labels);
    }

    [Fact]
    public void PixelsAreBytesOver255()
    {
        byte[] images = Images(1, 1, 3);
        images[16] = 0;
        images[17] = 128;
        images[18] = 255;
        WriteRaw(images, Labels(0));
        Assert.Equal(new[] { 0f, 128 / 255f, 1f }, IdxReader.Read(_dir.File("i"), _dir.File("l")).Pixels);
    }

    [Fact]
    public void EveryByteValueMapsToItsFraction()
    {
        // 2×256 values: long enough for the vectorised conversion, with a scalar tail from the odd width.
        byte[] images = Images(1, 2, 257);
        for (int i = 0; i < 2 * 257; i++)
            images[16 + i] = (byte)i;
        WriteRaw(images, Labels(0));
        float[] pixels = IdxReader.Read(_dir.File("i"), _dir.File("l")).Pixels;
        for (int i = 0; i < pixels.Length; i++)
            Assert.Equal((byte)i / 255f, pixels[i]);
    }

    [Fact]
    public void TruncatedGzipStreamIsAFormatError()
    {
        byte[] gz = Gzip(Images(50, 8, 8));
        File.WriteAllBytes(_dir.File("i"), gz[..(gz.Length / 2)]);
        File.WriteAllBytes(_dir.File("l"), Labels(new byte[50]));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Equal(_dir.File("i"), e.FilePath);
    }

    [Fact]
    public void BadImageMagicSaysFoundAndExpected()
    {
        byte[] images = Images(2, 2, 2);
        BinaryPrimitives.WriteUInt32BigEndian(images, 0x00000804);
        WriteRaw(images, Labels(0, 1));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Contains("bad magic number 0x00000804", e.Message);
        Assert.Contains("expected 0x00000803", e.Message);
        Assert.Contains(_dir.File("i"), e.Message);
        Assert.Equal(_dir.File("i"), e.FilePath);
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void SwappedPathsAreNamedAsSuch()
    {
        WriteRaw(Images(2, 2, 2), Labels(0, 1));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("l"), _dir.File("i")));
        Assert.Contains("expected 0x00000803", e.Message);
        Assert.Contains("swapped", e.Message);
    }

    [Fact]
    public void BadLabelMagicInGzippedFile()
    {
        byte[] labels = Labels(0, 1);
        BinaryPrimitives.WriteUInt32BigEndian(labels, 0x12345678);
        File.WriteAllBytes(_dir.File("i"), Images(2, 2, 2));
        File.WriteAllBytes(_dir.File("l.gz"), Gzip(labels));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l.gz")));
        Assert.Contains("bad magic number 0x12345678, expected 0x00000801", e.Message);
        Assert.Equal(_dir.File("l.gz"), e.FilePath);
    }

    [Fact]
    public void TruncatedHeader()
    {
        WriteRaw(Images(2, 2, 2)[..10], Labels(0, 1));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Contains("truncated IDX images header: expected 16 bytes, found 10", e.Message);
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void TruncatedImageDataNamesTheIncompleteImage()
    {
        // 3 images of 2×3 = 6 bytes each; keep 2 full images and 4 bytes of the third.
        byte[] images = Images(3, 2, 3);
        WriteRaw(images[..(16 + 6 * 2 + 4)], Labels(0, 1, 2));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Contains("header declares 3 images of 2×3 (18 bytes", e.Message);
        Assert.Contains("only 16 bytes follow; image 2 is incomplete", e.Message);
        Assert.Equal(16 + 12, e.Offset);
        Assert.Contains("at byte offset 28", e.Message);
    }

    [Fact]
    public void TruncatedGzippedLabels()
    {
        File.WriteAllBytes(_dir.File("i"), Gzip(Images(4, 2, 2)));
        File.WriteAllBytes(_dir.File("l"), Gzip(Labels(0, 1, 2, 3)[..10]));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Contains("header declares 4 labels", e.Message);
        Assert.Contains("only 2 bytes follow; label 2 is incomplete", e.Message);
        Assert.Equal(10, e.Offset);
    }

    [Fact]
    public void TrailingBytesAreAnError()
    {
        WriteRaw([.. Images(2, 2, 2), 1, 2, 3], Labels(0, 1));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Contains("3 unexpected bytes", e.Message);
        Assert.Equal(16 + 8, e.Offset);
    }

    [Fact]
    public void LabelOutOfRange()
    {
        WriteRaw(Images(3, 2, 2), Labels(1, 0, 10));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Contains("label 10 of image 2 is out of range for 10 classes", e.Message);
        Assert.Equal(8 + 2, e.Offset);
        Assert.Equal(_dir.File("l"), e.FilePath);
    }

    [Fact]
    public void LabelOutOfRangeForGivenClassNames()
    {
        WriteRaw(Images(2, 2, 2), Labels(1, 2));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l"), ["x", "y"]));
        Assert.Contains("label 2 of image 1 is out of range for 2 classes", e.Message);
        Assert.Equal(9, e.Offset);
    }

    [Fact]
    public void ImageAndLabelCountsMustMatch()
    {
        WriteRaw(Images(3, 2, 2), Labels(0, 1));
        var e = Assert.Throws<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Contains("holds 2 labels but the images file", e.Message);
        Assert.Contains("holds 3 images", e.Message);
        Assert.Contains(_dir.File("i"), e.Message);
        Assert.Contains(_dir.File("l"), e.Message);
    }

    [Fact]
    public void CorruptGzipIsAFormatError()
    {
        File.WriteAllBytes(_dir.File("i"), [0x1f, 0x8b, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08]);
        File.WriteAllBytes(_dir.File("l"), Labels(0));
        var e = Assert.ThrowsAny<DatasetFormatException>(() => IdxReader.Read(_dir.File("i"), _dir.File("l")));
        Assert.Equal(_dir.File("i"), e.FilePath);
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        File.WriteAllBytes(_dir.File("l"), Labels(0));
        var e = Assert.Throws<FileNotFoundException>(() => IdxReader.Read(_dir.File("nope"), _dir.File("l")));
        Assert.Equal(_dir.File("nope"), e.FileName);
        Assert.Contains(_dir.File("nope"), e.Message);
    }

    private void WriteRaw(byte[] images, byte[] labels)
    {
        File.WriteAllBytes(_dir.File("i"), images);
        File.WriteAllBytes(_dir.File("l"), labels);
    }

    private static byte[] Images(int count, int rows, int cols)
    {
        var bytes = new byte[16 + count * rows * cols];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, 0x00000803);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), (uint)count);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), (uint)rows);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), (uint)cols);
        for (int i = 16; i < bytes.Length; i++)
            bytes[i] = (byte)(i * 13);
        return bytes;
    }

    private static byte[] Labels(params byte[] labels)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, 0x00000801);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), (uint)labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    private static byte[] Gzip(byte[] bytes)
    {
        var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
            gzip.Write(bytes);
        return output.ToArray();
    }
}
