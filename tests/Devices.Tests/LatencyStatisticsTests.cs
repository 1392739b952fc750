namespace ParetoPrune.Devices.Tests;

public class LatencyStatisticsTests
{
    [Fact]
    public void FiveRunsByHand()
    {
        // Sorted 1..5. Type-7 quantiles: h = (n − 1)p; p10: h = 0.4 → 1.4; p90: h = 3.6 → 4.6.
        // Std (n − 1): Σ(d − 3)² = 10, √(10/4). CI ranks: 2.5 ∓ 1.96·√5/2 = 0.31 → 1, and 1 + 2.5 + 2.19 = 5.69 → 6 → 5.
        var s = LatencyStatistics.Summarize([5.0, 1, 4, 2, 3]);
        Assert.Equal(3, s.MedianMs, 12);
        Assert.Equal(1.4, s.P10Ms!.Value, 12);
        Assert.Equal(4.6, s.P90Ms!.Value, 12);
        Assert.Equal(3, s.MeanMs!.Value, 12);
        Assert.Equal(Math.Sqrt(2.5), s.StdMs!.Value, 12);
        Assert.Equal((1.0, 5.0), (s.MinMs!.Value, s.MaxMs!.Value));
        Assert.Equal((1.0, 5.0), (s.MedianCiLowerMs!.Value, s.MedianCiUpperMs!.Value));
        Assert.Equal(5, s.Runs);
        Assert.Equal(4.0 / 3, s.RelativeCiWidth, 12);
    }

    [Fact]
    public void TwentyRunsByHand()
    {
        // 1..20 shuffled: median (10 + 11)/2; p10: h = 1.9 → 2 + 0.9 = 2.9; p90: h = 17.1 → 18.1.
        // CI ranks 10 ∓ 4.38 → 5.62 → 6, 1 + 10 + 4.38 = 15.38 → 15: (x6, x15), the exact binomial 95.9 % interval.
        double[] values = [.. Enumerable.Range(1, 20).Select(i => (double)i).OrderBy(v => (v * 7919) % 20)];
        var s = LatencyStatistics.Summarize(values);
        Assert.Equal(10.5, s.MedianMs, 12);
        Assert.Equal(2.9, s.P10Ms!.Value, 12);
        Assert.Equal(18.1, s.P90Ms!.Value, 12);
        Assert.Equal((6.0, 15.0), (s.MedianCiLowerMs!.Value, s.MedianCiUpperMs!.Value));
    }

    [Fact]
    public void EvenCountInterpolates()
    {
        var s = LatencyStatistics.Summarize([40.0, 10, 30, 20]);
        Assert.Equal(25, s.MedianMs, 12);
        Assert.Equal(13, s.P10Ms!.Value, 12);  // h = 0.3
        Assert.Equal(37, s.P90Ms!.Value, 12);  // h = 2.7
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(5, 1, 5)]
    [InlineData(20, 6, 15)]
    [InlineData(100, 40, 61)]   // 50 ∓ 9.8 → 40.2 → 40, 60.8 → 61
    [InlineData(1000, 469, 532)] // 500 ∓ 30.99 → 469.01 → 469, 531.99 → 532
    public void MedianConfidenceRanks(int n, int lower, int upper) =>
        Assert.Equal((lower, upper), LatencyStatistics.MedianConfidenceRanks(n));

    [Fact]
    public void SingleRunIsAPoint()
    {
        var s = LatencyStatistics.Summarize([TimeSpan.FromMilliseconds(7)]);
        Assert.Equal(7, s.MedianMs, 12);
        Assert.Equal(0, s.StdMs!.Value);
        Assert.Equal((7.0, 7.0), (s.MedianCiLowerMs!.Value, s.MedianCiUpperMs!.Value));
    }

    [Fact]
    public void RejectsEmptyAndImpossibleDurations()
    {
        Assert.Throws<ArgumentException>(() => LatencyStatistics.Summarize(Array.Empty<double>()));
        Assert.Throws<ArgumentException>(() => LatencyStatistics.Summarize([1.0, -2]));
        Assert.Throws<ArgumentException>(() => LatencyStatistics.Summarize([1.0, double.NaN]));
    }
}
