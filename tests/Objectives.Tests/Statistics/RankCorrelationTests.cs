using ParetoPrune.Objectives.Statistics;

namespace ParetoPrune.Objectives.Tests.Statistics;

public sealed class RankCorrelationTests
{
    [Fact]
    public void WithoutTiesRhoIsTheClassicSumOfSquaredRankDifferences()
    {
        var random = new Random(3);
        for (int trial = 0; trial < 20; trial++)
        {
            int n = 3 + random.Next(12);
            var x = Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray();
            var y = x.Select(v => v + 0.5 * random.NextDouble()).ToArray();
            // 1 − 6 Σ d² / (n (n² − 1)), with ranks found by sorting: an independent formula valid without ties.
            double[] Rank(double[] v) { var sorted = v.Order().ToList(); return v.Select(e => (double)sorted.IndexOf(e) + 1).ToArray(); }
            var (rx, ry) = (Rank(x), Rank(y));
            double expected = 1 - 6 * rx.Zip(ry, (a, b) => (a - b) * (a - b)).Sum() / (n * (n * n - 1.0));
            Assert.Equal(expected, RankCorrelation.Spearman(x, y)!.Value, 12);
        }
    }

    [Fact]
    public void MonotoneMapsGiveOneAndReversalsMinusOne()
    {
        double[] x = [0.1, 0.5, 0.2, 0.9, 0.3];
        Assert.Equal(1, RankCorrelation.Spearman(x, x.Select(v => Math.Exp(10 * v)).ToArray())!.Value, 12);
        Assert.Equal(-1, RankCorrelation.Spearman(x, x.Select(v => -v * v).ToArray())!.Value, 12);
    }

    [Fact]
    public void TiesShareTheirMeanRank()
    {
        Assert.Equal([1.5, 1.5, 3, 4.5, 4.5], RankCorrelation.Ranks([2, 2, 5, 7, 7]));
        Assert.Equal([3, 1, 2], RankCorrelation.Ranks([9, 1, 4]));
        // Pearson's r of the mid-ranks, computed by hand: x ranks (1.5, 1.5, 3, 4) against y ranks (1, 2, 3, 4).
        double rho = RankCorrelation.Spearman([1, 1, 2, 3], [10, 20, 30, 40])!.Value;
        Assert.Equal(4.5 / Math.Sqrt(4.5 * 5), rho, 12);
    }

    [Fact]
    public void TooFewPairsOrAConstantSampleRankNothing()
    {
        Assert.Null(RankCorrelation.Spearman([1, 2], [2, 1]));
        Assert.Null(RankCorrelation.Spearman([0.1, 0.1, 0.1], [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => RankCorrelation.Spearman([1, 2, 3], [1, 2]));
    }
}
