using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Objectives.Tests.Pareto;

public sealed class HypervolumeTests
{
    static void Close(double expected, double actual, double relative = 1e-12) =>
        Assert.True(Math.Abs(expected - actual) <= relative * Math.Max(1, Math.Abs(expected)), $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void TwoDimensionalStaircase()
    {
        // Strips from the left: (4−1)(4−3) + (4−2)(3−2) + (4−3)(2−1) = 3 + 2 + 1.
        Assert.Equal(6, Hypervolume.Compute([[1, 3], [2, 2], [3, 1]], [4, 4]));
        // The same in any order.
        Assert.Equal(6, Hypervolume.Compute([[3, 1], [1, 3], [2, 2]], [4, 4]));
    }

    [Fact]
    public void DominatedRepeatedOutsideAndBoundaryPointsAddNothing()
    {
        double[][] points =
        [
            [1, 3], [2, 2], [3, 1],
            [3, 3], [2, 2], [2, 2.5], // dominated, duplicate, weakly dominated
            [5, 0], [0, 7],           // outside the reference
            [0.5, 4], [4, 0.5],       // on its boundary: no volume
        ];
        Assert.Equal(6, Hypervolume.Compute(points, [4, 4]));
    }

    [Fact]
    public void ThreeBoxesInThreeDimensions()
    {
        // Boxes [p, (4,4,4)] of (0,0,2), (0,2,0), (2,0,0): together all of [0,4]³ but the corner [0,2)³: 64 − 8.
        // Inclusion–exclusion agrees: 3·32 − 3·16 + 8.
        double[][] boxes = [[0, 0, 2], [0, 2, 0], [2, 0, 0]];
        Assert.Equal(56, Hypervolume.Compute(boxes, [4, 4, 4]));
        double[][] withExtras = [.. boxes, [1, 1, 3], [0, 2, 0], [2, 2, 2], [0, 0, 4], [5, 0, 0]];
        Assert.Equal(56, Hypervolume.Compute(withExtras, [4, 4, 4]));
    }

    [Fact]
    public void NestedAndOverlappingBoxesInThreeDimensions()
    {
        Assert.Equal(8, Hypervolume.Compute([[1, 1, 1], [2, 2, 2]], [3, 3, 3]));
        // (0,1,1): 3·2·2 = 12; (1,0,1): 12; overlap from (1,1,1): 8; (1,1,0): 2·2·3 = 12, its overlaps with the first two
        // (1,1,1) = 8 each, and the triple (1,1,1) = 8: 36 − 24 + 8 = 20.
        Assert.Equal(20, Hypervolume.Compute([[0, 1, 1], [1, 0, 1], [1, 1, 0]], [3, 3, 3]));
    }

    [Fact]
    public void SlabsInFourAndFiveDimensions()
    {
        // Point i is 2 on axis i and 0 elsewhere; the boxes cover [0,4]ᵈ except [0,2)ᵈ: 4ᵈ − 2ᵈ.
        static double[][] Slabs(int d) => [.. Enumerable.Range(0, d).Select(i => Enumerable.Range(0, d).Select(j => j == i ? 2.0 : 0.0).ToArray())];
        Assert.Equal(256 - 16, Hypervolume.Compute(Slabs(4), [4, 4, 4, 4]));
        Assert.Equal(1024 - 32, Hypervolume.Compute(Slabs(5), [4, 4, 4, 4, 4]));
        // A dominated point and a duplicate change nothing.
        Assert.Equal(256 - 16, Hypervolume.Compute([.. Slabs(4), [1, 2, 3, 3], [0, 2, 0, 0]], [4, 4, 4, 4]));
    }

    [Fact]
    public void OverlappingAndNestedBoxesInFourAndFiveDimensions()
    {
        // (1,1,1,1): 1; (0,0,0,1.5): 2·2·2·0.5 = 4; overlap from (1,1,1,1.5): 0.5. Union 4.5.
        Assert.Equal(4.5, Hypervolume.Compute([[1, 1, 1, 1], [0, 0, 0, 1.5]], [2, 2, 2, 2]));
        // 5-D: (0,0,0,0,1): 2⁴·1 = 16; (1,1,1,1,0): 1⁴·2 = 2; overlap from (1,1,1,1,1): 1. Union 17.
        Assert.Equal(17, Hypervolume.Compute([[0, 0, 0, 0, 1], [1, 1, 1, 1, 0]], [2, 2, 2, 2, 2]));
        // Nested: the outer box alone.
        Assert.Equal(32, Hypervolume.Compute([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], [2, 2, 2, 2, 2]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(6)]
    public void ASinglePointIsItsBox(int d)
    {
        double[] p = [.. Enumerable.Range(0, d).Select(i => 0.1 * i)];
        double[] r = [.. Enumerable.Range(0, d).Select(i => 1.0 + 0.5 * i)];
        double box = Enumerable.Range(0, d).Aggregate(1.0, (v, i) => v * (r[i] - p[i]));
        Close(box, Hypervolume.Compute([p], r));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void EmptyOrAllOutsideIsZero(int d)
    {
        var r = ParetoTestData.ReferencePoint(d);
        Assert.Equal(0, Hypervolume.Compute([], r));
        double[] beyond = [.. r.Select(v => v + 1)];
        double[] onBoundary = [.. r];
        onBoundary[0] = 0;
        Assert.Equal(0, Hypervolume.Compute([beyond, onBoundary], r));
    }

    [Theory]
    [InlineData(2, 40, 1)]
    [InlineData(2, 15, 2)]
    [InlineData(3, 40, 3)]
    [InlineData(3, 15, 4)]
    [InlineData(4, 30, 5)]
    [InlineData(4, 10, 6)]
    [InlineData(5, 25, 7)]
    [InlineData(5, 10, 8)]
    public void AgreesWithMonteCarlo(int d, int n, int seed)
    {
        var points = ParetoTestData.Front(n, d, seed);
        var r = ParetoTestData.ReferencePoint(d);
        double exact = Hypervolume.Compute(points, r);

        // Sample the box from the points' ideal corner to the reference: the dominated region lies inside it.
        var inside = points.Where(p => p.Zip(r).All(t => t.First < t.Second)).ToList();
        double[] low = [.. Enumerable.Range(0, d).Select(i => inside.Min(p => p[i]))];
        double boxVolume = Enumerable.Range(0, d).Aggregate(1.0, (v, i) => v * (r[i] - low[i]));
        const int samples = 200_000;
        var random = new Random(seed + 1000);
        var u = new double[d];
        int hits = 0;
        for (int s = 0; s < samples; s++)
        {
            for (int i = 0; i < d; i++) u[i] = low[i] + random.NextDouble() * (r[i] - low[i]);
            foreach (var p in inside)
            {
                int i = 0;
                while (i < d && p[i] <= u[i]) i++;
                if (i == d) { hits++; break; }
            }
        }
        double fraction = hits / (double)samples;
        double estimate = fraction * boxVolume;
        double standardError = boxVolume * Math.Sqrt(fraction * (1 - fraction) / samples);
        Assert.InRange(fraction, 0.05, 0.95); // a meaningful test: neither almost empty nor almost full
        Assert.True(Math.Abs(exact - estimate) <= 4 * standardError,
            $"exact {exact}, Monte-Carlo {estimate} ± {standardError} (d = {d}, n = {n})");
    }

    [Theory]
    [InlineData(2, 60, 11)]
    [InlineData(3, 60, 12)]
    [InlineData(4, 30, 13)]
    [InlineData(5, 20, 14)]
    public void ExactAlgorithmsAgree(int d, int n, int seed)
    {
        var r = ParetoTestData.ReferencePoint(d);
        foreach (var points in new[] { ParetoTestData.Front(n, d, seed), ParetoTestData.Grid(n, d, seed) })
        {
            double specialised = Hypervolume.Compute(points, r);
            Assert.True(specialised > 0);
            // WFG recursing down to one, two and three dimensions, where it hands over to min, the sweep, the 3-D sweep.
            for (int baseDimension = 1; baseDimension <= Math.Min(3, d); baseDimension++)
                Close(specialised, Hypervolume.ComputeWfg(points, r, baseDimension));
        }
    }

    [Fact]
    public void DoesNotReorderTheCallersPoints()
    {
        var points = ParetoTestData.Front(20, 3, 21);
        var before = points.ToList();
        Hypervolume.Compute(points, ParetoTestData.ReferencePoint(3));
        Hypervolume.Improvement(points, [0.5, 0.5, 0.5], ParetoTestData.ReferencePoint(3));
        Assert.Equal(before, points);
    }

    [Theory]
    [InlineData(2, 31)]
    [InlineData(3, 32)]
    [InlineData(4, 33)]
    [InlineData(5, 34)]
    public void ImprovementIsTheDifferenceOfTwoHypervolumes(int d, int seed)
    {
        var front = ParetoTestData.Front(15, d, seed);
        var r = ParetoTestData.ReferencePoint(d);
        double before = Hypervolume.Compute(front, r);
        var candidates = ParetoTestData.Front(10, d, seed + 1, extras: false);
        candidates.Add(front[0]);                                    // already on the front
        candidates.Add([.. front[1].Select(v => v + 0.01)]);         // dominated
        candidates.Add([.. front[2].Select(v => v * 0.5)]);          // dominates
        candidates.Add([.. r.Select(v => v + 0.1)]);                 // outside
        int improving = 0;
        foreach (var c in candidates)
        {
            double improvement = Hypervolume.Improvement(front, c, r);
            Close(Hypervolume.Compute([.. front, c], r) - before, improvement, 1e-11);
            Assert.True(improvement >= 0);
            if (improvement > 0) improving++;
        }
        Assert.True(improving >= 2);
        Assert.Equal(0, Hypervolume.Improvement(front, front[0], r));
        Assert.Equal(0, Hypervolume.Improvement(front, [.. front[1].Select(v => v + 0.01)], r));
        Assert.Equal(0, Hypervolume.Improvement(front, [.. r], r));
        // Into an empty front: the candidate's box.
        Close(Enumerable.Range(0, d).Aggregate(1.0, (v, i) => v * (r[i] - 0.5)), Hypervolume.Improvement([], [.. Enumerable.Repeat(0.5, d)], r));
    }

    [Fact]
    public void RejectsInconsistentInput()
    {
        Assert.Throws<ArgumentException>(() => Hypervolume.Compute([[1, 2, 3]], [4, 4]));
        Assert.Throws<ArgumentException>(() => Hypervolume.Compute([[1, double.NaN]], [4, 4]));
        Assert.Throws<ArgumentException>(() => Hypervolume.Compute([[1, double.NegativeInfinity]], [4, 4]));
        Assert.Throws<ArgumentException>(() => Hypervolume.Compute([[1, 1]], [4, double.PositiveInfinity]));
        Assert.Throws<ArgumentException>(() => Hypervolume.Compute([], []));
        Assert.Throws<ArgumentException>(() => Hypervolume.Improvement([[1, 1]], [1, 1, 1], [4, 4]));
        // +∞ is merely outside.
        Assert.Equal(9, Hypervolume.Compute([[1, 1], [0, double.PositiveInfinity]], [4, 4]));
    }
}
