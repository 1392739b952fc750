using ParetoPrune.Objectives.Data;
using SkiaSharp;

namespace ParetoPrune.Objectives.Tests.Data;

public sealed class ImageFolderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ReadsPngAndJpegLabelledBySortedFolder()
    {
        // Ordinal order: "Apple" < "mango" < "zebra" (upper case sorts first).
        WriteImage("zebra/1.png", 10, 7, new SKColor(10, 20, 30), SKEncodedImageFormat.Png);
        WriteImage("zebra/0.JPG", 12, 9, new SKColor(250, 250, 250), SKEncodedImageFormat.Jpeg);
        WriteImage("Apple/x.jpeg", 5, 5, new SKColor(0, 0, 0), SKEncodedImageFormat.Jpeg);
        WriteImage("mango/m.png", 3, 4, new SKColor(0, 255, 0), SKEncodedImageFormat.Png);
        File.WriteAllText(Path.Combine(_dir.Path, "mango", "notes.txt"), "not an image");

        Dataset d = ImageFolderReader.Read(_dir.Path, height: 6, width: 8, channels: 3);

        Assert.Equal((4, 3, 6, 8), (d.Count, d.Channels, d.Height, d.Width));
        Assert.Equal(new[] { "Apple", "mango", "zebra" }, d.ClassNames);
        Assert.Equal(new[] { 0, 1, 2, 2 }, d.Labels);
        Assert.Equal(4 * 3 * 6 * 8, d.Pixels.Length);
        // zebra/0.JPG sorts before zebra/1.png: the light image comes third.
        Assert.True(d.Image(2)[0] > 0.9f);
        Assert.InRange(d.Image(3)[0], 0f, 0.1f);
    }

    [Fact]
    public void SolidPngDecodesToItsColour()
    {
        WriteImage("only/solid.png", 10, 10, new SKColor(200, 100, 50), SKEncodedImageFormat.Png);

        Dataset rgb = ImageFolderReader.Read(_dir.Path, height: 4, width: 4, channels: 3);
        Dataset gray = ImageFolderReader.Read(_dir.Path, height: 4, width: 4, channels: 1);

        const float tolerance = 1.5f / 255f;
        int plane = 16;
        for (int p = 0; p < plane; p++)
        {
            Assert.Equal(200 / 255f, rgb.Pixels[p], tolerance);
            Assert.Equal(100 / 255f, rgb.Pixels[plane + p], tolerance);
            Assert.Equal(50 / 255f, rgb.Pixels[2 * plane + p], tolerance);
        }

        Assert.Equal(1, gray.Channels);
        Assert.Equal(16, gray.Pixels.Length);
        float luma = (0.299f * 200 + 0.587f * 100 + 0.114f * 50) / 255f;
        Assert.All(gray.Pixels, v => Assert.Equal(luma, v, tolerance));
    }

    [Fact]
    public void SolidJpegDecodesCloseToItsColour()
    {
        WriteImage("only/solid.jpg", 16, 16, new SKColor(30, 120, 220), SKEncodedImageFormat.Jpeg);
        Dataset d = ImageFolderReader.Read(_dir.Path, height: 2, width: 2, channels: 3);
        const float tolerance = 6f / 255f;
        Assert.All(d.Pixels[..4], v => Assert.Equal(30 / 255f, v, tolerance));
        Assert.All(d.Pixels[4..8], v => Assert.Equal(120 / 255f, v, tolerance));
        Assert.All(d.Pixels[8..], v => Assert.Equal(220 / 255f, v, tolerance));
    }

    [Fact]
    public void UndecodableImageNamesTheFile()
    {
        WriteImage("a/good.png", 2, 2, SKColors.Red, SKEncodedImageFormat.Png);
        string bad = Path.Combine(_dir.Path, "a", "bad.png");
        File.WriteAllText(bad, "this is not a PNG");

        var e = Assert.Throws<DatasetFormatException>(() => ImageFolderReader.Read(_dir.Path, 2, 2, 3));
        Assert.Equal(bad, e.FilePath);
        Assert.Contains(bad, e.Message);
        Assert.Contains("cannot be decoded", e.Message);
    }

    [Fact]
    public void EmptyRootIsAnError()
    {
        var e = Assert.Throws<DatasetFormatException>(() => ImageFolderReader.Read(_dir.Path, 2, 2, 3));
        Assert.Contains("is empty", e.Message);
        Assert.Equal(_dir.Path, e.FilePath);
    }

    [Fact]
    public void EmptyClassFolderIsAnError()
    {
        WriteImage("a/good.png", 2, 2, SKColors.Red, SKEncodedImageFormat.Png);
        Directory.CreateDirectory(Path.Combine(_dir.Path, "b"));
        File.WriteAllText(Path.Combine(_dir.Path, "b", "readme.txt"), "no images here");

        var e = Assert.Throws<DatasetFormatException>(() => ImageFolderReader.Read(_dir.Path, 2, 2, 3));
        Assert.Equal(Path.Combine(_dir.Path, "b"), e.FilePath);
        Assert.Contains("empty class folder", e.Message);
    }

    [Fact]
    public void RejectsUnsupportedChannelCount() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageFolderReader.Read(_dir.Path, 2, 2, 2));

    internal static void WriteImage(string root, string relative, int width, int height, SKColor colour, SKEncodedImageFormat format)
    {
        string path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        bitmap.Erase(colour);
        using FileStream file = File.Create(path);
        Assert.True(bitmap.Encode(file, format, 95), $"could not encode {path}");
    }

    private void WriteImage(string relative, int width, int height, SKColor colour, SKEncodedImageFormat format) =>
        WriteImage(_dir.Path, relative, width, height, colour, format);
}
