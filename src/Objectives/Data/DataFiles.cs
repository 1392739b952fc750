using System.IO.Compression;
using System.Numerics;

namespace ParetoPrune.Objectives.Data;

/// <summary>File helpers shared by the readers.</summary>
internal static class DataFiles
{
    /// <summary>The file's bytes, gunzipped when it starts with the gzip magic 1f 8b (whatever its name).</summary>
    public static byte[] ReadMaybeGzipped(string path)
    {
        RequireFile(path);
        return Gunzip(File.ReadAllBytes(path), path);
    }

    public static byte[] ReadMaybeGzipped(Stream stream, string name)
    {
        var raw = new MemoryStream();
        stream.CopyTo(raw);
        return Gunzip(raw.ToArray(), name);
    }

    private static byte[] Gunzip(byte[] bytes, string name)
    {
        if (bytes.Length < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b)
            return bytes;
        try
        {
            using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            // The trailer's ISIZE (uncompressed size mod 2^32) sizes the buffer, saving the copies of a
            // growing MemoryStream on 47 MB files. It is only a hint: capped by deflate's maximum ratio
            // (~1032:1) so a corrupt trailer cannot force a huge allocation, and overflow falls back to copying.
            long hint = bytes.Length >= 18 ? BitConverter.ToUInt32(bytes, bytes.Length - 4) : 0;
            var buffer = new byte[Math.Min(hint, Math.Min(1032L * bytes.Length, 1 << 30))];
            int filled = gzip.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            if (filled < buffer.Length)
                return buffer[..filled];
            var rest = new MemoryStream();
            gzip.CopyTo(rest);
            return rest.Length == 0 ? buffer : [.. buffer, .. rest.ToArray()];
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
        // Vectorised: whole datasets pass through here, and debug builds do not optimise a scalar loop.
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var scale = new Vector<float>(255f);
            int step = Vector<byte>.Count;
            int floats = Vector<float>.Count;
            for (; i <= source.Length - step; i += step)
            {
                Vector.Widen(new Vector<byte>(source[i..]), out Vector<ushort> low, out Vector<ushort> high);
                Vector.Widen(low, out Vector<uint> a, out Vector<uint> b);
                Vector.Widen(high, out Vector<uint> c, out Vector<uint> d);
                (Vector.ConvertToSingle(a) / scale).CopyTo(target[i..]);
                (Vector.ConvertToSingle(b) / scale).CopyTo(target[(i + floats)..]);
                (Vector.ConvertToSingle(c) / scale).CopyTo(target[(i + 2 * floats)..]);
                (Vector.ConvertToSingle(d) / scale).CopyTo(target[(i + 3 * floats)..]);
            }
        }

        for (; i < source.Length; i++)
            target[i] = source[i] / 255f;
    }
}
