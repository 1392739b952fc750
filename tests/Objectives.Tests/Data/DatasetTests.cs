using ParetoPrune.Objectives.Data;

namespace ParetoPrune.Objectives.Tests.Data;

public sealed class DatasetTests
{
    [Fact]
    public void SubsetKeepsClassesAndRelabelsInGivenOrder()
    {
        Dataset d = TestData.Make(count: 12, classes: 4); // labels 0,1,2,3,0,1,...

        Dataset s = d.Subset([3, 1]);

        Assert.Equal(new[] { "class3", "class1" }, s.ClassNames);
        Assert.Equal(6, s.Count);
        // Original images 1,3,5,7,9,11 in order; class 3 → 0, class 1 → 1.
        Assert.Equal(new[] { 1, 0, 1, 0, 1, 0 }, s.Labels);
        Assert.True(s.Image(1).SequenceEqual(d.Image(3)));
        Assert.True(s.Image(4).SequenceEqual(d.Image(9)));
        Assert.Contains("classes 3,1", s.Source);
    }

    [Fact]
    public void SubsetRejectsUnknownOrRepeatedClasses()
    {
        Dataset d = TestData.Make(count: 4, classes: 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Subset([2]));
        Assert.Throws<ArgumentException>(() => d.Subset([1, 1]));
        Assert.Throws<ArgumentException>(() => d.Subset([]));
    }

    [Fact]
    public void TakeCopiesImagesInOrder()
    {
        Dataset d = TestData.Make(count: 5, classes: 5, channels: 2, height: 3, width: 3);
        Dataset t = d.Take([4, 0, 4]);
        Assert.Equal(new[] { 4, 0, 4 }, t.Labels);
        Assert.True(t.Image(0).SequenceEqual(d.Image(4)));
        Assert.True(t.Image(1).SequenceEqual(d.Image(0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Take([5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Image(5));
    }

    [Fact]
    public void ConstructorValidatesShapeAndLabels()
    {
        Assert.Throws<ArgumentException>(() => new Dataset(new float[7], [0, 0], ["a"], 1, 2, 2, "x"));
        var e = Assert.Throws<ArgumentException>(() => new Dataset(new float[8], [0, 2], ["a", "b"], 1, 2, 2, "x"));
        Assert.Contains("Label 2 of image 1", e.Message);
    }

    [Fact]
    public void ChannelStatisticsMatchHandComputation()
    {
        // Two images, 2 channels of 1×2: channel 0 values {0.1,0.3,0.5,0.7}, channel 1 values {1,1,1,1}.
        float[] pixels = [0.1f, 0.3f, 1f, 1f, 0.5f, 0.7f, 1f, 1f];
        var d = new Dataset(pixels, [0, 0], ["a"], 2, 1, 2, "x");

        ChannelStatistics s = ChannelStatistics.Compute(d);

        Assert.Equal(0.4f, s.Mean[0], 1e-6f);
        // Population variance: (0.09 + 0.01 + 0.01 + 0.09) / 4 = 0.05.
        Assert.Equal(MathF.Sqrt(0.05f), s.Std[0], 1e-6f);
        Assert.Equal(1f, s.Mean[1], 1e-6f);
        Assert.Equal(1f, s.Std[1]); // constant channel: guarded, not 0
    }

    [Fact]
    public void NormalizedAppliesPerChannelMeanAndStd()
    {
        float[] pixels = [0.1f, 0.3f, 1f, 0.5f];
        var d = new Dataset(pixels, [0], ["a"], 2, 1, 2, "x");

        Dataset n = d.Normalized(new ChannelStatistics([0.2f, 0.5f], [0.1f, 0.25f]));

        Assert.Equal(-1f, n.Pixels[0], 1e-5f);
        Assert.Equal(1f, n.Pixels[1], 1e-5f);
        Assert.Equal(2f, n.Pixels[2], 1e-5f);
        Assert.Equal(0f, n.Pixels[3], 1e-5f);
        Assert.Equal(0.1f, d.Pixels[0]); // the original is untouched
        Assert.Throws<ArgumentException>(() => d.Normalized(new ChannelStatistics([0f], [1f])));
    }

    [Fact]
    public void NormalizedByOwnStatisticsHasZeroMeanUnitStd()
    {
        Dataset d = TestData.Make(count: 20, classes: 2, channels: 3);
        ChannelStatistics s = ChannelStatistics.Compute(d.Normalized(ChannelStatistics.Compute(d)));
        Assert.All(s.Mean, m => Assert.Equal(0f, m, 1e-4f));
        Assert.All(s.Std, v => Assert.Equal(1f, v, 1e-4f));
    }

    [Fact]
    public void ShuffledBatchesCoverEveryImageOnceAndAreDeterministic()
    {
        Dataset d = TestData.Make(count: 23, classes: 23, height: 1, width: 1);
        // With one pixel per image and 23 labels, the label identifies the image; check pixels follow.
        List<Batch> first = d.Batches(5, shuffle: true, seed: 42).ToList();
        List<Batch> again = d.Batches(5, shuffle: true, seed: 42).ToList();
        List<Batch> other = d.Batches(5, shuffle: true, seed: 43).ToList();

        Assert.Equal(new[] { 5, 5, 5, 5, 3 }, first.Select(b => b.Count));
        Assert.Equal(3, first[^1].Labels.Length);
        Assert.Equal(3, first[^1].Pixels.Length);
        int[] order = first.SelectMany(b => b.Labels).ToArray();
        Assert.Equal(Enumerable.Range(0, 23), order.Order());
        Assert.NotEqual(Enumerable.Range(0, 23), order);
        Assert.Equal(order, again.SelectMany(b => b.Labels));
        Assert.NotEqual(order, other.SelectMany(b => b.Labels));
        foreach (Batch b in first)
            for (int k = 0; k < b.Count; k++)
                Assert.Equal(d.Pixels[b.Labels[k]], b.Pixels[k]);
    }

    [Fact]
    public void UnshuffledBatchesKeepOrder()
    {
        Dataset d = TestData.Make(count: 7, classes: 7, channels: 2, height: 2, width: 2);
        List<Batch> batches = d.Batches(4, shuffle: false, seed: 0).ToList();
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5, 6 }, batches.SelectMany(b => b.Labels));
        Assert.Equal(d.Pixels, batches.SelectMany(b => b.Pixels));
        Assert.Throws<ArgumentOutOfRangeException>(() => d.Batches(0, false, 0));
    }

    [Fact]
    public void AugmentedBatchesAreDeterministicForASeed()
    {
        Dataset d = TestData.Make(count: 16, classes: 2, height: 6, width: 6);
        var augmentation = new Augmentation(CropPadding: 2, HorizontalFlip: true);
        float[] a = d.Batches(8, true, 7, augmentation).SelectMany(b => b.Pixels).ToArray();
        float[] b = d.Batches(8, true, 7, augmentation).SelectMany(b => b.Pixels).ToArray();
        float[] plain = d.Batches(8, true, 7).SelectMany(b => b.Pixels).ToArray();
        Assert.Equal(a, b);
        Assert.NotEqual(plain, a);
        Assert.Equal(d.Pixels.Length, a.Length);
    }
}
