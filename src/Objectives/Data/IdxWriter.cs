using System.Buffers.Binary;
using System.IO.Compression;

namespace ParetoPrune.Objectives.Data;

/// <summary>Writes IDX image/label pairs (single-channel datasets with at most 256 classes).</summary>
public static class IdxWriter
{
    /// <summary>Pixels are stored as round(value × 255) clamped to 0..255, so [0,1] data round-trips exactly.</summary>
    public static void Write(string imagesPath, string labelsPath, Dataset dataset, bool gzip)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Channels != 1)
            throw new ArgumentException($"IDX holds single-channel images; this dataset has {dataset.Channels} channels.", nameof(dataset));
        if (dataset.ClassNames.Count > 256)
            throw new ArgumentException($"IDX labels are bytes; this dataset has {dataset.ClassNames.Count} classes.", nameof(dataset));

        var images = new byte[16 + dataset.Pixels.Length];
        WriteHeader(images, IdxReader.ImagesMagic, dataset.Count, dataset.Height, dataset.Width);
        for (int i = 0; i < dataset.Pixels.Length; i++)
            images[16 + i] = (byte)Math.Clamp(MathF.Round(dataset.Pixels[i] * 255f), 0f, 255f);

        var labels = new byte[8 + dataset.Count];
        WriteHeader(labels, IdxReader.LabelsMagic, dataset.Count);
        for (int i = 0; i < dataset.Count; i++)
            labels[8 + i] = (byte)dataset.Labels[i];

        Save(imagesPath, images, gzip);
        Save(labelsPath, labels, gzip);
    }

    private static void WriteHeader(byte[] target, uint magic, params int[] fields)
    {
        BinaryPrimitives.WriteUInt32BigEndian(target, magic);
        for (int k = 0; k < fields.Length; k++)
            BinaryPrimitives.WriteUInt32BigEndian(target.AsSpan(4 + 4 * k), (uint)fields[k]);
    }

    private static void Save(string path, byte[] bytes, bool gzip)
    {
        using FileStream file = File.Create(path);
        if (!gzip)
        {
            file.Write(bytes);
            return;
        }

        using var compressed = new GZipStream(file, CompressionLevel.SmallestSize);
        compressed.Write(bytes);
    }
}
