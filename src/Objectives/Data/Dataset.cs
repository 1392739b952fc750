namespace ParetoPrune.Objectives.Data;

/// <summary>One mini-batch: <paramref name="Count"/> images (N×C×H×W) and their labels.</summary>
/// <param name="Indices">Where each image sits in the dataset it was drawn from (empty when not drawn from one).</param>
public sealed record Batch(float[] Pixels, int[] Labels, int Count, int[]? Indices = null)
{
    public int[] Indices { get; init; } = Indices ?? [];
}

/// <summary>
/// An in-memory labelled image set. Pixels are N×C×H×W contiguous floats in [0,1] (byte/255)
/// unless the set came from <see cref="Normalized"/>; one flat array keeps copies, batching and
/// hand-off to tensors cheap. Instances are treated as immutable: every operation returns a new set.
/// </summary>
public sealed class Dataset
{
    public Dataset(float[] pixels, int[] labels, IReadOnlyList<string> classNames,
        int channels, int height, int width, string source)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(source);
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"Image shape must be positive, got {channels}×{height}×{width}.");
        if (classNames.Count == 0)
            throw new ArgumentException("A dataset needs at least one class name.", nameof(classNames));
        long expected = (long)labels.Length * channels * height * width;
        if (pixels.LongLength != expected)
            throw new ArgumentException(
                $"{labels.Length} images of {channels}×{height}×{width} need {expected} pixel values, got {pixels.LongLength}.",
                nameof(pixels));
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentException(
                    $"Label {labels[i]} of image {i} is out of range for {classNames.Count} classes.", nameof(labels));
        }

        Pixels = pixels;
        Labels = labels;
        ClassNames = classNames.ToArray();
        Channels = channels;
        Height = height;
        Width = width;
        Source = source;
    }

    public float[] Pixels { get; }

    string? fingerprint;

    /// <summary>SHA-256 of the labels and pixels in order (hex, 32 characters; computed once): equal exactly when two sets
    /// hold the same images in the same order, so a model can record which images it trained on without carrying them.</summary>
    public string Fingerprint => fingerprint ??= ComputeFingerprint();

    string ComputeFingerprint()
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Labels.AsSpan()));
        hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Pixels.AsSpan()));
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..32];
    }

    public int[] Labels { get; }

    public IReadOnlyList<string> ClassNames { get; }

    public int Count => Labels.Length;

    public int Channels { get; }

    public int Height { get; }

    public int Width { get; }

    /// <summary>Where the data came from (files, sample, subset), for provenance in reports.</summary>
    public string Source { get; }

    /// <summary>Values per image: C×H×W.</summary>
    public int ImageSize => Channels * Height * Width;

    public ReadOnlySpan<float> Image(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return Pixels.AsSpan(index * ImageSize, ImageSize);
    }

    /// <summary>Number of images of each class, indexed by label.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassNames.Count];
        foreach (int label in Labels)
            counts[label]++;
        return counts;
    }

    /// <summary>
    /// Keeps only the given classes, relabelled 0..k-1 in the order given (so the caller fixes the
    /// label order of the smaller problem). Image order is preserved.
    /// </summary>
    public Dataset Subset(IReadOnlyList<int> classes)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (classes.Count == 0)
            throw new ArgumentException("Subset needs at least one class.", nameof(classes));
        var newLabel = new int[ClassNames.Count];
        Array.Fill(newLabel, -1);
        for (int k = 0; k < classes.Count; k++)
        {
            int c = classes[k];
            if ((uint)c >= (uint)ClassNames.Count)
                throw new ArgumentOutOfRangeException(nameof(classes), $"Class {c} does not exist; this dataset has {ClassNames.Count} classes.");
            if (newLabel[c] >= 0)
                throw new ArgumentException($"Class {c} is listed twice.", nameof(classes));
            newLabel[c] = k;
        }

        var kept = new List<int>();
        for (int i = 0; i < Count; i++)
        {
            if (newLabel[Labels[i]] >= 0)
                kept.Add(i);
        }

        float[] pixels = CopyImages(kept);
        int[] labels = kept.Select(i => newLabel[Labels[i]]).ToArray();
        string[] names = classes.Select(c => ClassNames[c]).ToArray();
        return new Dataset(pixels, labels, names, Channels, Height, Width,
            $"{Source} [classes {string.Join(",", classes)}]");
    }

    /// <summary>The images at <paramref name="indices"/>, in that order (repeats allowed).</summary>
    public Dataset Take(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        foreach (int i in indices)
        {
            if ((uint)i >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"Index {i} is out of range for {Count} images.");
        }

        return new Dataset(CopyImages(indices), indices.Select(i => Labels[i]).ToArray(), ClassNames,
            Channels, Height, Width, Source);
    }

    /// <summary>A copy with each channel mapped to (x - mean) / std.</summary>
    public Dataset Normalized(ChannelStatistics statistics)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        if (statistics.Mean.Length != Channels || statistics.Std.Length != Channels)
            throw new ArgumentException(
                $"Statistics are for {statistics.Mean.Length} channels, the dataset has {Channels}.", nameof(statistics));
        var result = new float[Pixels.Length];
        int plane = Height * Width;
        for (int n = 0; n < Count; n++)
        {
            for (int c = 0; c < Channels; c++)
            {
                int start = (n * Channels + c) * plane;
                float mean = statistics.Mean[c];
                float inverse = 1f / statistics.Std[c];
                for (int k = start; k < start + plane; k++)
                    result[k] = (Pixels[k] - mean) * inverse;
            }
        }

        return new Dataset(result, (int[])Labels.Clone(), ClassNames, Channels, Height, Width, Source);
    }

    /// <summary>
    /// Mini-batches covering every image once; the last may be short. With <paramref name="shuffle"/>
    /// the order is a permutation drawn from <paramref name="seed"/>, and augmentation draws from the
    /// same generator, so a seed fully determines the epoch. Each batch owns fresh arrays.
    /// </summary>
    public IEnumerable<Batch> Batches(int batchSize, bool shuffle, int seed, Augmentation? augmentation = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        return Enumerate(batchSize, shuffle, seed, augmentation);
    }

    private IEnumerable<Batch> Enumerate(int batchSize, bool shuffle, int seed, Augmentation? augmentation)
    {
        var random = new Random(seed);
        int[] order = Enumerable.Range(0, Count).ToArray();
        if (shuffle)
            random.Shuffle(order);
        for (int start = 0; start < Count; start += batchSize)
        {
            int n = Math.Min(batchSize, Count - start);
            var indices = new ArraySegment<int>(order, start, n);
            var batch = new Batch(CopyImages(indices), indices.Select(i => Labels[i]).ToArray(), n, indices.ToArray());
            augmentation?.Apply(batch, Channels, Height, Width, random);
            yield return batch;
        }
    }

    /// <summary>The same images, described differently (the description travels into every score's provenance).</summary>
    public Dataset WithSource(string source) =>
        new(Pixels, Labels, ClassNames, Channels, Height, Width, source);

    private float[] CopyImages(IReadOnlyList<int> indices)
    {
        int size = ImageSize;
        var result = new float[(long)indices.Count * size];
        for (int k = 0; k < indices.Count; k++)
            Array.Copy(Pixels, (long)indices[k] * size, result, (long)k * size, size);
        return result;
    }
}
