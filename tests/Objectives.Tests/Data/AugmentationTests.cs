using ParetoPrune.Objectives.Data;

namespace ParetoPrune.Objectives.Tests.Data;

public sealed class AugmentationTests
{
    // A 2-channel 3×4 image whose values are 1 + index, so zeros only appear where padding was filled in.
    private const int C = 2, H = 3, W = 4, Size = C * H * W;

    private static float[] Image() => [.. Enumerable.Range(1, Size).Select(i => (float)i)];

    private static float At(float[] image, int c, int y, int x) => image[(c * H + y) * W + x];

    [Fact]
    public void FlipMirrorsExactly()
    {
        float[] image = Image();
        Augmentation.FlipHorizontal(image, C, H, W);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    Assert.Equal(At(Image(), c, y, W - 1 - x), At(image, c, y, x));
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(0, -2)]
    [InlineData(-1, 1)]
    [InlineData(2, 3)]
    public void ShiftMovesContentAndFillsZeros(int dy, int dx)
    {
        float[] image = Image();
        Augmentation.Shift(image, C, H, W, dy, dx, new float[Size]);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                {
                    bool inside = y + dy is >= 0 and < H && x + dx is >= 0 and < W;
                    Assert.Equal(inside ? At(Image(), c, y + dy, x + dx) : 0f, At(image, c, y, x));
                }
    }

    [Fact]
    public void ApplyFlipsAboutHalfTheImagesAndNothingElse()
    {
        const int count = 200;
        var batch = new Batch([.. Enumerable.Range(0, count).SelectMany(_ => Image())], new int[count], count);
        float[] mirrored = Image();
        Augmentation.FlipHorizontal(mirrored, C, H, W);

        new Augmentation(HorizontalFlip: true).Apply(batch, C, H, W, new Random(3));

        int flipped = 0;
        for (int n = 0; n < count; n++)
        {
            float[] image = batch.Pixels[(n * Size)..((n + 1) * Size)];
            if (image.SequenceEqual(mirrored))
                flipped++;
            else
                Assert.Equal(Image(), image);
        }

        Assert.InRange(flipped, 70, 130);
    }

    [Fact]
    public void ApplyCropsWithinThePaddingAndFillsZeros()
    {
        const int count = 100, padding = 1;
        var batch = new Batch([.. Enumerable.Range(0, count).SelectMany(_ => Image())], new int[count], count);

        new Augmentation(CropPadding: padding).Apply(batch, C, H, W, new Random(9));

        var seen = new HashSet<(int, int)>();
        for (int n = 0; n < count; n++)
        {
            float[] image = batch.Pixels[(n * Size)..((n + 1) * Size)];
            // Every image must be some shift within ±padding of the original.
            (int, int)? match = null;
            for (int dy = -padding; dy <= padding && match is null; dy++)
                for (int dx = -padding; dx <= padding && match is null; dx++)
                {
                    float[] expected = Image();
                    Augmentation.Shift(expected, C, H, W, dy, dx, new float[Size]);
                    if (expected.SequenceEqual(image))
                        match = (dy, dx);
                }

            Assert.NotNull(match);
            seen.Add(match.Value);
        }

        Assert.Equal(9, seen.Count); // all shifts in the 3×3 window occur over 100 draws
    }

    [Fact]
    public void NoAugmentationLeavesTheBatchUnchanged()
    {
        var batch = new Batch(Image(), [0], 1);
        new Augmentation().Apply(batch, C, H, W, new Random(1));
        Assert.Equal(Image(), batch.Pixels);
    }

    [Fact]
    public void RejectsNegativePaddingAndWrongShape()
    {
        var batch = new Batch(Image(), [0], 1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Augmentation(CropPadding: -1).Apply(batch, C, H, W, new Random(1)));
        Assert.Throws<ArgumentException>(() => new Augmentation().Apply(batch, C, H, W + 1, new Random(1)));
    }
}
