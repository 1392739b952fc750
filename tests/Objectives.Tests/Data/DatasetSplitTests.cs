using ParetoPrune.Objectives.Data;

namespace ParetoPrune.Objectives.Tests.Data;

public sealed class DatasetSplitTests
{
    // Class sizes 10, 20, 33 (unequal, to check stratification per class), one pixel per image holding
    // its index, so a split's images can be traced back.
    private static Dataset Make()
    {
        int[] labels = [.. Enumerable.Repeat(0, 10), .. Enumerable.Repeat(1, 20), .. Enumerable.Repeat(2, 33)];
        new Random(1).Shuffle(labels);
        float[] pixels = [.. Enumerable.Range(0, labels.Length).Select(i => (float)i)];
        return new Dataset(pixels, labels, ["a", "b", "c"], 1, 1, 1, "split test");
    }

    [Fact]
    public void IsStratifiedDisjointAndComplete()
    {
        Dataset d = Make();
        (Dataset train, Dataset validation) = DatasetSplit.Stratified(d, 0.25, seed: 5);

        // round(0.25 × 10) = 3 (2.5 rounds away from zero), round(0.25 × 20) = 5, round(0.25 × 33) = 8.
        Assert.Equal(new[] { 3, 5, 8 }, validation.ClassCounts());
        Assert.Equal(new[] { 7, 15, 25 }, train.ClassCounts());
        int[] trainIds = [.. train.Pixels.Select(p => (int)p)];
        int[] validationIds = [.. validation.Pixels.Select(p => (int)p)];
        Assert.Empty(trainIds.Intersect(validationIds));
        Assert.Equal(Enumerable.Range(0, d.Count), trainIds.Concat(validationIds).Order());
        // Original order kept, labels travel with their images.
        Assert.Equal(trainIds.Order(), trainIds);
        for (int k = 0; k < validation.Count; k++)
            Assert.Equal(d.Labels[validationIds[k]], validation.Labels[k]);
        Assert.Equal(d.ClassNames, train.ClassNames);
        Assert.Contains("validation", validation.Source);
    }

    [Fact]
    public void IsDeterministicForASeedAndVariesWithIt()
    {
        Dataset d = Make();
        float[] first = DatasetSplit.Stratified(d, 0.3, seed: 11).Validation.Pixels;
        float[] again = DatasetSplit.Stratified(d, 0.3, seed: 11).Validation.Pixels;
        float[] other = DatasetSplit.Stratified(d, 0.3, seed: 12).Validation.Pixels;
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
        Assert.Equal(first.Length, other.Length);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.1)]
    [InlineData(double.NaN)]
    public void RejectsFractionOutsideOpenUnitInterval(double fraction) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => DatasetSplit.Stratified(Make(), fraction, 0));

    [Fact]
    public void RejectsAnEmptyValidationPart()
    {
        var e = Assert.Throws<ArgumentException>(() => DatasetSplit.Stratified(Make(), 0.01, 0));
        Assert.Contains("0 for validation", e.Message);
    }
}
