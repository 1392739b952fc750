using ParetoPrune.Objectives.Data;

namespace ParetoPrune.Objectives.Tests.Data;

public sealed class CifarTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ReadsCifar10RecordsAcrossFilesInPlaneOrder()
    {
        WriteCifar10(_dir.File("a.bin"), firstRecord: 0, labels: [3, 0, 9]);
        WriteCifar10(_dir.File("b.bin"), firstRecord: 3, labels: [1, 2]);

        Dataset d = CifarReader.ReadCifar10([_dir.File("a.bin"), _dir.File("b.bin")]);

        Assert.Equal((5, 3, 32, 32), (d.Count, d.Channels, d.Height, d.Width));
        Assert.Equal(new[] { 3, 0, 9, 1, 2 }, d.Labels);
        Assert.Equal("cat", d.ClassNames[3]);
        foreach (int r in new[] { 0, 2, 4 })
        {
            ReadOnlySpan<float> image = d.Image(r);
            foreach ((int c, int y, int x) in new[] { (0, 0, 0), (1, 5, 17), (2, 31, 30), (0, 12, 31) })
                Assert.Equal(TestData.CifarPixel(r, c, y, x) / 255f, image[(c * 32 + y) * 32 + x]);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReadsCifar100FineOrCoarse(bool fine)
    {
        byte[][] labels = [[4, 99], [19, 0], [0, 42]];
        TestData.WriteCifar(_dir.File("train.bin"), labels, [.. Enumerable.Range(0, 3).Select(TestData.CifarImage)]);

        Dataset d = CifarReader.ReadCifar100([_dir.File("train.bin")], fine);

        Assert.Equal(fine ? new[] { 99, 0, 42 } : new[] { 4, 19, 0 }, d.Labels);
        Assert.Equal(fine ? 100 : 20, d.ClassNames.Count);
        Assert.Equal(fine ? "worm" : "vehicles_2", d.ClassNames[^1]);
        Assert.Equal(TestData.CifarPixel(1, 2, 3, 4) / 255f, d.Image(1)[(2 * 32 + 3) * 32 + 4]);
    }

    [Fact]
    public void TruncatedRecordGivesOffsetAndLengths()
    {
        WriteCifar10(_dir.File("t.bin"), firstRecord: 0, labels: [1, 2]);
        byte[] bytes = File.ReadAllBytes(_dir.File("t.bin"));
        File.WriteAllBytes(_dir.File("t.bin"), bytes[..(3073 + 100)]);

        var e = Assert.Throws<DatasetFormatException>(() => CifarReader.ReadCifar10([_dir.File("t.bin")]));
        Assert.Contains("truncated CIFAR-10 record 1: expected 3073 bytes, found 100", e.Message);
        Assert.Equal(3073, e.Offset);
        Assert.Equal(_dir.File("t.bin"), e.FilePath);
    }

    [Fact]
    public void LabelOutOfRange()
    {
        WriteCifar10(_dir.File("l.bin"), firstRecord: 0, labels: [1, 10]);
        var e = Assert.Throws<DatasetFormatException>(() => CifarReader.ReadCifar10([_dir.File("l.bin")]));
        Assert.Contains("label 10 of record 1 is out of range for 10 classes", e.Message);
        Assert.Equal(3073, e.Offset);
    }

    [Fact]
    public void Cifar100LabelOutOfRangeForCoarse()
    {
        TestData.WriteCifar(_dir.File("c.bin"), [[20, 5]], [TestData.CifarImage(0)]);
        var e = Assert.Throws<DatasetFormatException>(() => CifarReader.ReadCifar100([_dir.File("c.bin")], fine: false));
        Assert.Contains("label 20 of record 0 is out of range for 20 classes", e.Message);
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void ReadsCifar10DirectoryWithMetaNames()
    {
        for (int b = 1; b <= 5; b++)
            WriteCifar10(_dir.File($"data_batch_{b}.bin"), firstRecord: b * 10, labels: [(byte)(b - 1), 4]);
        WriteCifar10(_dir.File("test_batch.bin"), firstRecord: 0, labels: [2]);
        File.WriteAllLines(_dir.File("batches.meta.txt"), ["a", "b", "c", "d", "e", ""]);

        Dataset train = CifarReader.ReadCifar10Directory(_dir.Path, train: true);
        Dataset test = CifarReader.ReadCifar10Directory(_dir.Path, train: false);

        Assert.Equal(10, train.Count);
        Assert.Equal(new[] { 0, 4, 1, 4, 2, 4, 3, 4, 4, 4 }, train.Labels);
        Assert.Equal(new[] { "a", "b", "c", "d", "e" }, train.ClassNames);
        Assert.Equal(TestData.CifarPixel(30, 1, 2, 3) / 255f, train.Image(4)[(32 + 2) * 32 + 3]);
        Assert.Equal(1, test.Count);
    }

    [Fact]
    public void MissingBatchNamesThePath()
    {
        WriteCifar10(_dir.File("data_batch_1.bin"), firstRecord: 0, labels: [0]);
        var e = Assert.Throws<FileNotFoundException>(() => CifarReader.ReadCifar10Directory(_dir.Path, train: true));
        Assert.Equal(_dir.File("data_batch_2.bin"), e.FileName);
    }

    [Fact]
    public void ReadsCifar100DirectoryWithNameFiles()
    {
        TestData.WriteCifar(_dir.File("train.bin"), [[1, 2], [0, 1]], [TestData.CifarImage(0), TestData.CifarImage(1)]);
        TestData.WriteCifar(_dir.File("test.bin"), [[1, 0]], [TestData.CifarImage(2)]);
        File.WriteAllLines(_dir.File("fine_label_names.txt"), ["f0", "f1", "f2"]);
        File.WriteAllLines(_dir.File("coarse_label_names.txt"), ["c0", "c1"]);

        Dataset fine = CifarReader.ReadCifar100Directory(_dir.Path, train: true, fine: true);
        Dataset coarse = CifarReader.ReadCifar100Directory(_dir.Path, train: false, fine: false);

        Assert.Equal(new[] { 2, 1 }, fine.Labels);
        Assert.Equal(new[] { "f0", "f1", "f2" }, fine.ClassNames);
        Assert.Equal(new[] { 1 }, coarse.Labels);
        Assert.Equal(new[] { "c0", "c1" }, coarse.ClassNames);
    }

    private static void WriteCifar10(string path, int firstRecord, byte[] labels) =>
        TestData.WriteCifar(path, [.. labels.Select(l => new[] { l })],
            [.. Enumerable.Range(firstRecord, labels.Length).Select(TestData.CifarImage)]);
}
