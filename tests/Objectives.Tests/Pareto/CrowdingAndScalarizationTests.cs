using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Objectives.Tests.Pareto;

public sealed class CrowdingDistanceTests
{
    [Fact]
    public void HandCase()
    {
        // Both ranges are 4. (1,2): f1 neighbours 0 and 2 → 2/4, f2 neighbours 1 and 4 → 3/4: 1.25. (2,1): 3/4 + 2/4.
        double[][] front = [[0, 4], [1, 2], [2, 1], [4, 0]];
        Assert.Equal([double.PositiveInfinity, 1.25, 1.25, double.PositiveInfinity], CrowdingDistance.Compute(front));
    }

    [Fact]
    public void AConstantObjectiveAddsNothing()
    {
        // Third objective constant: no 0/0, no extremes along it. Middle: 2/2 + 1/1.
        double[][] front = [[0, 1, 5], [1, 0.5, 5], [2, 0, 5]];
        Assert.Equal([double.PositiveInfinity, 2, double.PositiveInfinity], CrowdingDistance.Compute(front));
        Assert.Equal([0, 0, 0], CrowdingDistance.Compute([[1, 1], [1, 1], [1, 1]]));
    }

    [Fact]
    public void SmallFrontsAreAllBoundary()
    {
        Assert.Empty(CrowdingDistance.Compute([]));
        Assert.Equal([double.PositiveInfinity], CrowdingDistance.Compute([[1, 2]]));
        Assert.Equal([double.PositiveInfinity, double.PositiveInfinity], CrowdingDistance.Compute([[1, 2], [2, 1]]));
    }
}

public sealed class ScalarizationTests
{
    [Fact]
    public void AugmentedChebyshevHandCase()
    {
        // max(0.5·0.2, 0.5·0.6) + 0.05·(0.1 + 0.3) = 0.3 + 0.02.
        Assert.Equal(0.32, Scalarization.AugmentedChebyshev([0.2, 0.6], [0.5, 0.5]), 1e-15);
        Assert.Equal(0.3, Scalarization.AugmentedChebyshev([0.2, 0.6], [0.5, 0.5], rho: 0), 1e-15);
        // The augmentation breaks the max's tie in favour of the point better everywhere.
        Assert.True(Scalarization.AugmentedChebyshev([0.5, 0.2], [0.5, 0.5]) < Scalarization.AugmentedChebyshev([0.5, 0.4], [0.5, 0.5]));
        Assert.Throws<ArgumentException>(() => Scalarization.AugmentedChebyshev([0.2, 0.6], [1]));
        Assert.Throws<ArgumentException>(() => Scalarization.AugmentedChebyshev([0.2, 0.6], [-0.5, 1.5]));
    }

    [Fact]
    public void RandomWeightsAreUniformOnTheSimplexAndSeeded()
    {
        var weights = Scalarization.RandomWeights(4000, 3, seed: 7);
        Assert.All(weights, w =>
        {
            Assert.Equal(1, w.Sum(), 1e-12);
            Assert.All(w, v => Assert.InRange(v, 0, 1));
        });
        // Dirichlet(1,1,1): each weight has mean 1/3 and P(w₀ > 1/2) = (1 − 1/2)² = 1/4.
        for (int i = 0; i < 3; i++) Assert.InRange(weights.Average(w => w[i]), 0.32, 0.347);
        Assert.InRange(weights.Count(w => w[0] > 0.5) / 4000.0, 0.23, 0.27);
        Assert.Equal(weights, Scalarization.RandomWeights(4000, 3, seed: 7));
        Assert.NotEqual(weights[0], Scalarization.RandomWeights(1, 3, seed: 8)[0]);
    }

    [Fact]
    public void NormaliseByRange()
    {
        var normalised = Scalarization.NormaliseByRange([[1, 10, 3], [3, 30, 3], [2, 20, 3]]);
        Assert.Equal([[0, 0, 0], [1, 1, 0], [0.5, 0.5, 0]], normalised);
        Assert.Empty(Scalarization.NormaliseByRange([]));
    }
}

public sealed class PenalisedObjectiveTests
{
    static readonly Dictionary<ObjectiveKind, double> Baseline = new()
    {
        [ObjectiveKind.Accuracy] = 0.9, [ObjectiveKind.Macs] = 100e6, [ObjectiveKind.Latency] = 20,
    };

    [Fact]
    public void HingeOnRelativeOvershoot()
    {
        var objective = PenalisedObjective.FromConstraints(
            ConstraintSet.Parse(["macs <= 0.4*baseline", "latency <= 10 ms", "accuracy >= baseline - 0.05"]), Baseline, lambda: 1);
        Assert.Equal(new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 40e6, [ObjectiveKind.Latency] = 10 }, objective.Targets);
        // Within both targets: plain relative accuracy, 0.81 / 0.9.
        Assert.Equal(0.9, objective.Score(Values(0.81, 30e6, 8)), 1e-12);
        // 25 % over the MAC target and 10 % over the latency target: 0.9 − (0.25 + 0.1).
        Assert.Equal(0.55, objective.Score(Values(0.81, 50e6, 11)), 1e-12);
        Assert.Equal(0.35, objective.Penalty(Values(0.81, 50e6, 11)), 1e-12);
        // λ scales the penalty only.
        var strict = new PenalisedObjective(0.9, objective.Targets, lambda: 10);
        Assert.Equal(0.9 - 3.5, strict.Score(Values(0.81, 50e6, 11)), 1e-12);
    }

    [Fact]
    public void TargetsAsFractionsOfTheBaseline()
    {
        var objective = PenalisedObjective.FromBaselineFractions(Baseline, new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 0.5 });
        Assert.Equal(50e6, objective.Targets[ObjectiveKind.Macs]);
        Assert.Equal(1 - 0.2, objective.Score(Values(0.9, 60e6, 100)), 1e-12);
    }

    [Fact]
    public void Errors()
    {
        Assert.Contains("reward", Assert.Throws<ArgumentException>(() =>
            new PenalisedObjective(0.9, new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.8 })).Message);
        Assert.Throws<ArgumentException>(() => new PenalisedObjective(0.9, new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new PenalisedObjective(0.9, new Dictionary<ObjectiveKind, double>(), lambda: -1));
        var objective = new PenalisedObjective(0.9, new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Energy] = 50 });
        Assert.Contains("energy", Assert.Throws<ArgumentException>(() => objective.Score(Values(0.9, 1, 1))).Message);
    }

    static Dictionary<ObjectiveKind, double> Values(double accuracy, double macs, double latency) => new()
    {
        [ObjectiveKind.Accuracy] = accuracy, [ObjectiveKind.Macs] = macs, [ObjectiveKind.Latency] = latency,
    };
}

public sealed class ObjectiveSpaceTests
{
    [Fact]
    public void NegatesMaximisedObjectivesAndNormalisesByTheBaseline()
    {
        ObjectiveKind[] objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs, ObjectiveKind.Energy];
        var baseline = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.8, [ObjectiveKind.Macs] = 200e6, [ObjectiveKind.Energy] = 40 };
        var values = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.6, [ObjectiveKind.Macs] = 50e6, [ObjectiveKind.Energy] = 30 };

        var raw = new ObjectiveSpace(objectives);
        Assert.Equal([-0.6, 50e6, 30], raw.ToPoint(values));
        Assert.False(raw.IsNormalised);

        var space = new ObjectiveSpace(objectives, baseline);
        Assert.Equal([-1, 1, 1], space.ToPoint(baseline));
        var close = new ToleranceComparer(1e-12);
        var point = space.ToPoint(values);
        Assert.Equal([-0.75, 0.25, 0.75], point, close);
        var back = space.FromPoint(point);
        Assert.All(values, v => Assert.Equal(v.Value, back[v.Key], 1e-9 * v.Value));
        // ObjectiveValues work too, and the reference point maps the same way.
        Assert.Equal(point, space.ToPoint(values.Select(v => new ObjectiveValue(v.Key, v.Value, Provenance.Computed, Fidelities.Computed))));
        var reference = ReferencePoint.FromBaseline(objectives, baseline);
        Assert.Equal([-0.875, 1.1, 1.1], space.ToPoint(reference), close);
    }

    [Fact]
    public void Errors()
    {
        var baseline = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 0 };
        Assert.Contains("positive", Assert.Throws<ArgumentException>(() => new ObjectiveSpace([ObjectiveKind.Macs], baseline)).Message);
        Assert.Contains("latency", Assert.Throws<ArgumentException>(() => new ObjectiveSpace([ObjectiveKind.Latency], baseline)).Message);
        Assert.Throws<ArgumentException>(() => new ObjectiveSpace([ObjectiveKind.Macs, ObjectiveKind.Macs]));
        Assert.Contains("params", Assert.Throws<ArgumentException>(() =>
            new ObjectiveSpace([ObjectiveKind.Params]).ToPoint(new Dictionary<ObjectiveKind, double>())).Message);
    }

    sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(double obj) => 0;
    }
}
