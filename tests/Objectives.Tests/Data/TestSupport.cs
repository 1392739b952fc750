using ParetoPrune.Objectives.Data;

namespace ParetoPrune.Objectives.Tests.Data;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "paretoprune-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (Directory.Exists(Path))
            Directory.Delete(Path, recursive: true);
    }
}

/// <summary>A fact that is reported as skipped (not silently passed) when a directory is absent.</summary>
public sealed class FactIfDirectoryExistsAttribute : FactAttribute
{
    public FactIfDirectoryExistsAttribute(string directory)
    {
        if (!Directory.Exists(directory))
            Skip = $"{directory} does not exist on this machine";
    }
}

internal static class TestData
{
    /// <summary>
    /// Images whose pixel values are distinct multiples of 1/255 derived from (image, position),
    /// so any misplaced value is detected. Labels cycle through the classes.
    /// </summary>
    public static Dataset Make(int count, int classes, int channels = 1, int height = 4, int width = 5, int salt = 0)
    {
        int size = channels * height * width;
        var pixels = new float[count * size];
        for (int i = 0; i < pixels.Length; i++)
            pixels[i] = ((i * 7 + salt) % 256) / 255f;
        int[] labels = Enumerable.Range(0, count).Select(i => i % classes).ToArray();
        string[] names = Enumerable.Range(0, classes).Select(c => $"class{c}").ToArray();
        return new Dataset(pixels, labels, names, channels, height, width, "test data");
    }

    /// <summary>Writes CIFAR binary records: label byte(s) then R, G, B planes of 32×32.</summary>
    public static void WriteCifar(string path, IReadOnlyList<byte[]> labelBytes, IReadOnlyList<byte[]> images)
    {
        using FileStream file = System.IO.File.Create(path);
        for (int r = 0; r < images.Count; r++)
        {
            file.Write(labelBytes[r]);
            file.Write(images[r]);
        }
    }

    /// <summary>The byte a test CIFAR record stores at channel c, row y, column x.</summary>
    public static byte CifarPixel(int record, int c, int y, int x) => (byte)((record * 31 + c * 101 + y * 7 + x * 3) % 256);

    public static byte[] CifarImage(int record)
    {
        var bytes = new byte[3 * 32 * 32];
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    bytes[c * 1024 + y * 32 + x] = CifarPixel(record, c, y, x);
        return bytes;
    }
}
