using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Objectives.Tests.Pareto;

public sealed class NonDominatedSortingTests
{
    /// <summary>The definition: front k is what no remaining point dominates, once fronts 0…k−1 are removed.</summary>
    static List<int[]> BruteForce(IReadOnlyList<double[]> points, IReadOnlyList<double>? violations)
    {
        bool Dominates(int a, int b) => violations is null
            ? Dominance.Dominates(points[a], points[b])
            : Dominance.ConstrainedDominates(points[a], violations[a], points[b], violations[b]);
        var remaining = Enumerable.Range(0, points.Count).ToList();
        var fronts = new List<int[]>();
        while (remaining.Count > 0)
        {
            int[] front = [.. remaining.Where(i => !remaining.Any(j => Dominates(j, i)))];
            fronts.Add(front);
            remaining.RemoveAll(front.Contains);
        }
        return fronts;
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(4, 3)]
    [InlineData(2, 4)]
    public void MatchesTheDefinitionOnPointsWithTiesAndDuplicates(int d, int seed)
    {
        var points = ParetoTestData.Grid(80, d, seed, levels: 4);
        Assert.Contains(points.GroupBy(p => string.Join(",", p)), g => g.Count() > 1); // duplicates present
        var fronts = NonDominatedSorting.Sort(points);
        Assert.Equal(BruteForce(points, null), fronts);
        Assert.Equal(fronts[0], NonDominatedSorting.FirstFront(points));
        Assert.Equal(Enumerable.Range(0, points.Count), fronts.SelectMany(f => f).Order());
    }

    [Theory]
    [InlineData(2, 5)]
    [InlineData(3, 6)]
    public void MatchesTheDefinitionUnderConstraintDomination(int d, int seed)
    {
        var points = ParetoTestData.Grid(80, d, seed, levels: 4);
        var random = new Random(seed);
        // Half feasible; the rest with violations from a small set, so equal violations occur.
        double[] violations = [.. points.Select(_ => random.Next(2) == 0 ? 0 : random.Next(1, 4) * 0.5)];
        var fronts = NonDominatedSorting.Sort(points, violations);
        Assert.Equal(BruteForce(points, violations), fronts);
        Assert.Equal(fronts[0], NonDominatedSorting.FirstFront(points, violations));
        // Every feasible point ranks before every infeasible one.
        int Rank(int i) => fronts.Select((f, k) => (f, k)).First(t => t.f.Contains(i)).k;
        int worstFeasible = Enumerable.Range(0, points.Count).Where(i => violations[i] == 0).Max(Rank);
        int bestInfeasible = Enumerable.Range(0, points.Count).Where(i => violations[i] > 0).Min(Rank);
        Assert.True(worstFeasible < bestInfeasible);
    }

    [Fact]
    public void DuplicatesShareAFront()
    {
        double[][] points = [[1, 1], [2, 2], [1, 1], [0, 3], [2, 2]];
        Assert.Equal([[0, 2, 3], [1, 4]], NonDominatedSorting.Sort(points));
    }

    [Fact]
    public void HandCase()
    {
        //  index: 0 (1,5)  1 (2,3)  2 (3,4)  3 (4,1)  4 (5,5)  5 (3,2)
        double[][] points = [[1, 5], [2, 3], [3, 4], [4, 1], [5, 5], [3, 2]];
        Assert.Equal([[0, 1, 3, 5], [2], [4]], NonDominatedSorting.Sort(points));
        Assert.Empty(NonDominatedSorting.Sort([]));
    }

    [Fact]
    public void ConstraintDomination()
    {
        double[] good = [0, 0], bad = [5, 5];
        // Feasible beats infeasible whatever the objectives.
        Assert.True(Dominance.ConstrainedDominates(bad, 0, good, 0.1));
        // Of two infeasible, the smaller violation.
        Assert.True(Dominance.ConstrainedDominates(bad, 0.1, good, 0.2));
        // Equal violations, or both feasible: ordinary dominance.
        Assert.True(Dominance.ConstrainedDominates(good, 0.3, bad, 0.3));
        Assert.True(Dominance.ConstrainedDominates(good, 0, bad, 0));
        Assert.Equal(0, Dominance.ConstrainedCompare([1, 2], 0, [2, 1], 0));
        Assert.Equal(0, Dominance.ConstrainedCompare([1, 2], 0.2, [1, 2], 0.2));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dominance.ConstrainedCompare(good, -0.1, bad, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Dominance.ConstrainedCompare(good, double.NaN, bad, 0));

        Assert.Equal([[1], [2], [0]], NonDominatedSorting.Sort([good, bad, good], [0.5, 0, 0.25]));
    }

    [Fact]
    public void PlainDominance()
    {
        Assert.True(Dominance.Dominates([1, 2], [1, 3]));
        Assert.False(Dominance.Dominates([1, 2], [1, 2]));
        Assert.False(Dominance.Dominates([1, 3], [2, 2]));
        Assert.Equal(1, Dominance.Compare([2, 2], [1, 2]));
        Assert.Throws<ArgumentException>(() => Dominance.Compare([1, 2], [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => Dominance.Compare([1, double.NaN], [1, 2]));
    }

    [Fact]
    public void RejectsInconsistentInput()
    {
        Assert.Throws<ArgumentException>(() => NonDominatedSorting.Sort([[1, 2], [1]]));
        Assert.Throws<ArgumentException>(() => NonDominatedSorting.Sort([[1, 2], [1, 3]], [0]));
        Assert.Throws<ArgumentException>(() => NonDominatedSorting.Sort([[1, double.NaN]]));
    }
}
