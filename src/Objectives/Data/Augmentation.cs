namespace ParetoPrune.Objectives.Data;

/// <summary>
/// Training-time augmentation. <paramref name="CropPadding"/> &gt; 0: random crop of the image
/// zero-padded by that many pixels on each side, i.e. a random shift by up to that many pixels
/// with zeros filling the vacated border (zero in the batch's own value space, so the mean colour
/// if the data were normalised). <paramref name="HorizontalFlip"/>: mirror left-right with probability ½.
/// </summary>
public sealed record Augmentation(int CropPadding = 0, bool HorizontalFlip = false)
{
    /// <summary>Augments every image of <paramref name="batch"/> in place, drawing from <paramref name="random"/>.</summary>
    public void Apply(Batch batch, int channels, int height, int width, Random random)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(random);
        ArgumentOutOfRangeException.ThrowIfNegative(CropPadding);
        int size = channels * height * width;
        if (size <= 0 || batch.Pixels.Length < (long)batch.Count * size)
            throw new ArgumentException(
                $"A batch of {batch.Count} images of {channels}×{height}×{width} needs {(long)batch.Count * size} values, it has {batch.Pixels.Length}.");
        float[]? scratch = CropPadding > 0 ? new float[size] : null;
        for (int n = 0; n < batch.Count; n++)
        {
            Span<float> image = batch.Pixels.AsSpan(n * size, size);
            // Fixed draw order (flip, then dy, dx) keeps a seed's results stable.
            if (HorizontalFlip && random.Next(2) == 1)
                FlipHorizontal(image, channels, height, width);
            if (scratch is not null)
            {
                int dy = random.Next(-CropPadding, CropPadding + 1);
                int dx = random.Next(-CropPadding, CropPadding + 1);
                Shift(image, channels, height, width, dy, dx, scratch);
            }
        }
    }

    internal static void FlipHorizontal(Span<float> image, int channels, int height, int width)
    {
        for (int row = 0; row < channels * height; row++)
            image.Slice(row * width, width).Reverse();
    }

    /// <summary>
    /// result(y, x) = image(y + dy, x + dx), zero outside: the crop at offset (padding+dy, padding+dx)
    /// of the zero-padded image.
    /// </summary>
    internal static void Shift(Span<float> image, int channels, int height, int width, int dy, int dx, float[] scratch)
    {
        if (dy == 0 && dx == 0)
            return;
        Span<float> result = scratch.AsSpan(0, image.Length);
        result.Clear();
        int x0 = Math.Max(0, -dx), x1 = Math.Min(width, width - dx);
        int y0 = Math.Max(0, -dy), y1 = Math.Min(height, height - dy);
        if (x0 < x1)
        {
            for (int c = 0; c < channels; c++)
            {
                for (int y = y0; y < y1; y++)
                {
                    int to = (c * height + y) * width;
                    int from = (c * height + y + dy) * width;
                    image.Slice(from + x0 + dx, x1 - x0).CopyTo(result.Slice(to + x0, x1 - x0));
                }
            }
        }

        result.CopyTo(image);
    }
}
