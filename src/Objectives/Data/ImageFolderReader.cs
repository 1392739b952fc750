using SkiaSharp;

namespace ParetoPrune.Objectives.Data;

/// <summary>
/// An image-classification folder: <c>root/&lt;class&gt;/*.png|jpg|jpeg</c>. Class folders sorted by
/// ordinal name give labels 0..k-1; files are read in ordinal name order, so loading is reproducible.
/// </summary>
public static class ImageFolderReader
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg"];

    /// <summary>
    /// Decodes every image, resizes it to <paramref name="height"/>×<paramref name="width"/> (bilinear,
    /// aspect ratio not kept) and converts it to 1 channel (BT.601 luma) or 3 (RGB). Transparent pixels
    /// are composited over black. Files with other extensions are skipped.
    /// </summary>
    public static Dataset Read(string root, int height, int width, int channels)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Images can be read with 1 (luma) or 3 (RGB) channels.");
        if (!Directory.Exists(root))
            throw new DirectoryNotFoundException($"Image folder not found: {root}");

        string[] classDirectories = Directory.GetDirectories(root).Order(StringComparer.Ordinal).ToArray();
        if (classDirectories.Length == 0)
            throw new DatasetFormatException(root, "is empty: expected one sub-folder of images per class");

        var files = new List<(string Path, int Label)>();
        for (int label = 0; label < classDirectories.Length; label++)
        {
            string[] images = Directory.GetFiles(classDirectories[label])
                .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal)
                .ToArray();
            if (images.Length == 0)
                throw new DatasetFormatException(classDirectories[label],
                    "is an empty class folder: it holds no .png, .jpg or .jpeg images");
            files.AddRange(images.Select(f => (f, label)));
        }

        int size = channels * height * width;
        var pixels = new float[(long)files.Count * size];
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        var sampling = new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear);
        for (int n = 0; n < files.Count; n++)
        {
            string path = files[n].Path;
            using SKBitmap decoded = SKBitmap.Decode(path)
                ?? throw new DatasetFormatException(path, "cannot be decoded as an image (corrupt, or not the format its extension says)");
            // Resize also converts to premultiplied RGBA, whatever the file's own colour type.
            using SKBitmap resized = decoded.Resize(info, sampling)
                ?? throw new DatasetFormatException(path, $"could not be resized from {decoded.Width}×{decoded.Height} to {width}×{height}");
            Convert(resized.GetPixelSpan(), resized.RowBytes, pixels.AsSpan(n * size, size), channels, height, width);
        }

        string[] names = classDirectories.Select(d => Path.GetFileName(d)).ToArray();
        return new Dataset(pixels, files.Select(f => f.Label).ToArray(), names, channels, height, width,
            $"image folder {root}");
    }

    private static void Convert(ReadOnlySpan<byte> rgba, int rowBytes, Span<float> target, int channels, int height, int width)
    {
        int plane = height * width;
        for (int p = 0; p < plane; p++)
        {
            int at = p / width * rowBytes + p % width * 4;
            float r = rgba[at] / 255f, g = rgba[at + 1] / 255f, b = rgba[at + 2] / 255f;
            if (channels == 1)
            {
                target[p] = 0.299f * r + 0.587f * g + 0.114f * b;
            }
            else
            {
                target[p] = r;
                target[plane + p] = g;
                target[2 * plane + p] = b;
            }
        }
    }
}
