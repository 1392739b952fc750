using System.IO.Compression;

namespace ParetoPrune.Objectives.Data;

/// <summary>File helpers shared by the readers.</summary>
internal static class DataFiles
{
    /// <summary>The file's bytes, gunzipped when it starts with the gzip magic 1f 8b (whatever its name).</summary>
    public static byte[] ReadMaybeGzipped(string path)
    {
        RequireFile(path);
        using FileStream file = File.OpenRead(path);
        return ReadMaybeGzipped(file, path);
    }

    public static byte[] ReadMaybeGzipped(Stream stream, string name)
    {
        var raw = new MemoryStream();
        stream.CopyTo(raw);
        byte[] bytes = raw.ToArray();
        if (bytes.Length < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b)
            return bytes;
        try
        {
            using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            var output = new MemoryStream();
            gzip.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new DatasetFormatException(name, $"starts with the gzip magic 1f 8b but is not a valid gzip stream: {e.Message}", inner: e);
        }
    }

    public static void RequireFile(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Dataset file not found: {path}", path);
    }

    public static uint BigEndianUInt32(byte[] bytes, int offset) =>
        (uint)(bytes[offset] << 24 | bytes[offset + 1] << 16 | bytes[offset + 2] << 8 | bytes[offset + 3]);

    /// <summary>Non-empty trimmed lines of a class-name file (CIFAR's *.txt, classes.txt); at least one.</summary>
    public static string[] ReadNames(string path)
    {
        string[] names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return names.Length > 0 ? names : throw new DatasetFormatException(path, "lists no class names");
    }

    /// <summary>byte/255 into a float array, starting at <paramref name="destinationIndex"/>.</summary>
    public static void ToUnit(ReadOnlySpan<byte> source, float[] destination, long destinationIndex)
    {
        Span<float> target = destination.AsSpan((int)destinationIndex, source.Length);
        for (int i = 0; i < source.Length; i++)
            target[i] = source[i] / 255f;
    }
}
