using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Objectives.Tests.Pareto;

public sealed class HypervolumeSubsetTests
{
    static readonly double[] Reference = [1, 1];

    /// <summary>Hypervolume of a set in 2-D by a grid count: an independent check of what each pick is worth.</summary>
    static double GridVolume(IEnumerable<double[]> points)
    {
        const int n = 400;
        var list = points.ToList();
        int covered = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double x = (i + 0.5) / n, y = (j + 0.5) / n;
                if (list.Any(p => p[0] <= x && p[1] <= y)) covered++;
            }
        return covered / (double)(n * n);
    }

    [Fact]
    public void GreedyPicksSpreadAlongTheFrontAndMatchTheBestPairByBruteForce()
    {
        // A concave front with a crowded cheap end: crowding would not stop three picks landing at x ≈ 0.1.
        double[][] points = [[0.10, 0.90], [0.11, 0.89], [0.12, 0.88], [0.35, 0.55], [0.6, 0.3], [0.9, 0.1], [0.5, 0.8]];
        var violations = new double[points.Length];
        var two = HypervolumeSubset.Greedy(points, violations, Reference, 2);
        var bestPair = (from a in Enumerable.Range(0, points.Length) from b in Enumerable.Range(0, points.Length) where a < b
                        select (a, b, v: GridVolume([points[a], points[b]]))).MaxBy(t => t.v);
        Assert.Equal(bestPair.v, GridVolume(two.Select(i => points[i])), 2);
        var four = HypervolumeSubset.Greedy(points, violations, Reference, 4);
        Assert.Single(four, i => points[i][0] < 0.2); // one pick from the crowded end, not three
        Assert.DoesNotContain(6, four);               // the dominated point adds nothing
        for (int k = 1; k < four.Count; k++)           // each pick adds less than the one before (submodularity)
            Assert.True(GridVolume(four.Take(k + 1).Select(i => points[i])) - GridVolume(four.Take(k).Select(i => points[i])) <=
                        GridVolume(four.Take(k).Select(i => points[i])) - GridVolume(four.Take(k - 1).Select(i => points[i])) + 1e-3);
    }

    [Fact]
    public void PointsAddingNothingFollowByTieBreakThenRankAndInfeasibleOnesComeLast()
    {
        // Outside the reference box (x ≥ 1): no hypervolume, ordered by the tie-break, then by non-dominated rank.
        double[][] points = [[1.2, 0.3], [1.1, 0.4], [0.5, 0.5], [1.5, 0.9], [0.1, 0.1]];
        double[] violations = [0, 0, 0, 0, 0.3];
        double[] tieBreak = [1, 5, 0, 1, 0];
        var order = HypervolumeSubset.Greedy(points, violations, Reference, 5, tieBreak);
        Assert.Equal(2, order[0]);                 // the only point inside the box
        Assert.Equal([0, 3, 1], order.Skip(1).Take(3)); // tie-break 1, 1, 5; between 0 and 3, rank (0 before 3, which it dominates)
        Assert.Equal(4, order[^1]);                // infeasible, although it would dominate everything
        Assert.Equal(2, HypervolumeSubset.Greedy(points, violations, Reference, 2).Count);
    }
}
