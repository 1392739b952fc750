namespace ParetoPrune.Objectives.Tests.Definitions;

public sealed class ConstraintSetTests
{
    static readonly Dictionary<ObjectiveKind, double> Baseline = new()
    {
        [ObjectiveKind.Accuracy] = 0.9, [ObjectiveKind.Macs] = 300e6, [ObjectiveKind.Latency] = 20,
    };

    [Fact]
    public void ContradictoryRelativeBoundsAreFoundWithoutABaseline()
    {
        var problems = ConstraintSet.Parse(["macs <= 0.3*baseline", "macs >= 0.5*baseline"]).Validate();
        var problem = Assert.Single(problems);
        Assert.Contains("'macs >= 0.5*baseline' and 'macs <= 0.3*baseline' contradict each other", problem);
        Assert.Contains("whatever the baseline", problem);
        // baseline − 0.05 against baseline − 0.01: the lower bound is above for every baseline.
        Assert.Single(ConstraintSet.Parse(["accuracy <= baseline - 0.05", "accuracy >= baseline - 0.01"]).Validate());
        Assert.Empty(ConstraintSet.Parse(["macs <= 0.5*baseline", "macs >= 0.3*baseline"]).Validate());
    }

    [Fact]
    public void ContradictoryAbsoluteAndMixedBounds()
    {
        var problem = Assert.Single(ConstraintSet.Parse(["latency <= 10 ms", "latency >= 20 ms"]).Validate());
        Assert.Contains("'latency >= 20 ms' and 'latency <= 10 ms'", problem);
        Assert.Contains("the lower bound 20 ms is above the upper bound 10 ms", problem);
        // Mixed: only decidable once the baseline is known (0.5 × 300 M = 150 M > 100 M).
        var mixed = ConstraintSet.Parse(["macs <= 100M", "macs >= 0.5*baseline"]);
        Assert.Empty(mixed.Validate());
        Assert.Contains("the lower bound 150 M is above the upper bound 100 M", Assert.Single(mixed.Validate(Baseline)));
        // Equal bounds can both hold.
        Assert.Empty(ConstraintSet.Parse(["latency <= 10 ms", "latency >= 10 ms"]).Validate());
    }

    [Fact]
    public void TwoBoundsOnOneSideKeepTheTighter()
    {
        var set = ConstraintSet.Parse(["macs <= 0.5*baseline", "macs <= 0.4*baseline", "macs <= 200M", "accuracy >= 0.8", "accuracy >= baseline - 0.05"]);
        Assert.Empty(set.Validate(Baseline));
        var (lower, upper) = set.Bounds(ObjectiveKind.Macs, Baseline);
        Assert.Null(lower);
        Assert.Equal(120e6, upper!.Value, 1e-3);
        Assert.Equal(0.85, set.Bounds(ObjectiveKind.Accuracy, Baseline).Lower!.Value, 1e-15);
        Assert.Equal((null, null), set.Bounds(ObjectiveKind.Energy, Baseline));
    }

    [Theory]
    [InlineData("accuracy >= 1.2", "'accuracy >= 1.2' can never be met: accuracy is a fraction, at most 1 (for ninety per cent write 0.9 or 90%)")]
    [InlineData("accuracy >= 90", "accuracy is a fraction, at most 1")]
    [InlineData("accuracy <= -0.1", "accuracy is a fraction, at least 0")]
    [InlineData("macs <= 0", "'macs <= 0' can never be met: macs of a model is always above 0")]
    [InlineData("latency <= -5 ms", "'latency <= -5 ms' can never be met")]
    [InlineData("params <= 0*baseline", "'params <= 0*baseline' can never be met")]
    public void ImpossibleBoundsAreReported(string text, string expected) =>
        Assert.Contains(expected, Assert.Single(ConstraintSet.Parse([text]).Validate()));

    [Fact]
    public void ImpossibleOnlyWithTheBaseline()
    {
        var set = ConstraintSet.Parse(["accuracy >= 101% baseline"]);
        Assert.Empty(set.Validate());
        Assert.Empty(set.Validate(Baseline)); // 0.909: possible
        var high = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.999 };
        Assert.Contains("'accuracy >= 1.01*baseline' can never be met (with the baseline: 100.9 %)", Assert.Single(set.Validate(high)));
    }

    [Fact]
    public void TotalViolationSumsNormalisedMisses()
    {
        var set = ConstraintSet.Parse(["macs <= 0.4*baseline", "accuracy >= baseline - 0.01", "latency <= 30 ms"]);
        var values = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 150e6, [ObjectiveKind.Accuracy] = 0.8, [ObjectiveKind.Latency] = 25 };
        // MACs: 30 M over 120 M is 0.1 of 300 M; accuracy: 0.09 short of 0.89 is 0.1 of 0.9; latency meets its bound.
        Assert.Equal(0.2, set.TotalViolation(values, Baseline), 1e-12);
        Assert.Equal(["macs <= 0.4*baseline", "accuracy >= baseline - 0.01"], set.Violated(values, Baseline).Select(c => c.ToString()));
        var feasible = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 100e6, [ObjectiveKind.Accuracy] = 0.895, [ObjectiveKind.Latency] = 25 };
        Assert.Equal(0, set.TotalViolation(feasible, Baseline));
        Assert.Equal(0, ConstraintSet.Empty.TotalViolation(feasible, Baseline));
        values.Remove(ObjectiveKind.Latency);
        Assert.Contains("no latency value to check 'latency <= 30 ms' against",
            Assert.Throws<ArgumentException>(() => set.TotalViolation(values, Baseline)).Message);
    }

    [Fact]
    public void JsonArrayOfStrings()
    {
        var set = ConstraintSet.FromJson("""["macs <= 0.4*baseline", "energy <= 50 mJ", "accuracy >= 99% baseline"]""");
        Assert.Equal("macs <= 0.4*baseline; energy <= 50 mJ; accuracy >= 0.99*baseline", set.ToString());
    }

    [Fact]
    public void JsonStructuredObjects()
    {
        var set = ConstraintSet.FromJson("""
            [
              { "objective": "macs", "op": "<=", "value": 0.4, "relativeToBaseline": true },
              { "objective": "latency", "op": "<=", "value": 0.02, "unit": "s" },
              { "objective": "accuracy", "op": ">=", "value": 1, "relativeToBaseline": true, "offset": -1, "unit": "%" },
              { "objective": "flops", "op": ">=", "value": 10, "relativeToBaseline": true, "unit": "%" },
              { "objective": "energy", "op": "≤", "value": 50 },
              "params <= 2M", // comments and trailing commas are allowed
            ]
            """);
        Assert.Equal(
            [
                Constraint.Parse("macs <= 0.4*baseline"), Constraint.Parse("latency <= 20 ms"), Constraint.Parse("accuracy >= baseline - 0.01"),
                Constraint.Parse("macs >= 0.1*baseline"), Constraint.Parse("energy <= 50 mJ"), Constraint.Parse("params <= 2M"),
            ],
            set);
    }

    [Theory]
    [InlineData("""{ "macs": 1 }""", "constraints must be a JSON array")]
    [InlineData("""[ "macs <= 0.4*baseline", "macs <= 20 ms" ]""", "constraints[1]: constraint 'macs <= 20 ms': unit 'ms' does not fit macs")]
    [InlineData("""[ 5 ]""", "constraints[0]: expected a string such as \"macs <= 0.4*baseline\" or an object")]
    [InlineData("""[ { "objective": "macs", "op": "<=", "value": 1, "relative": true } ]""", "constraints[0]: unknown field 'relative': the fields are objective, op, value, relativeToBaseline, offset and unit")]
    [InlineData("""[ { "op": "<=", "value": 1 } ]""", "constraints[0]: 'objective' is missing")]
    [InlineData("""[ { "objective": "speed", "op": "<=", "value": 1 } ]""", "unknown objective 'speed': known objectives are accuracy, macs")]
    [InlineData("""[ { "objective": "macs", "value": 1 } ]""", "'op' is missing")]
    [InlineData("""[ { "objective": "macs", "op": "<", "value": 1 } ]""", "'op' is '<': write \"<=\" or \">=\"")]
    [InlineData("""[ { "objective": "macs", "op": "<=" } ]""", "'value' is missing")]
    [InlineData("""[ { "objective": "macs", "op": "<=", "value": "1" } ]""", "'value' must be a number")]
    [InlineData("""[ { "objective": "macs", "op": "<=", "value": 1, "offset": 2 } ]""", "'offset' is only for a bound relative to the baseline")]
    [InlineData("""[ { "objective": "macs", "op": "<=", "value": 1, "unit": "ms" } ]""", "unit 'ms' does not fit macs")]
    [InlineData("""[ "macs <= 1", { "objective": "latency", "op": ">=", "value": 1, "relativeToBaseline": "yes" } ]""", "constraints[1]: 'relativeToBaseline' must be true or false")]
    [InlineData("""[ "macs <= 1" """, "constraints: not valid JSON")]
    public void JsonErrorsNameTheItem(string json, string expected) =>
        Assert.Contains(expected, Assert.Throws<FormatException>(() => ConstraintSet.FromJson(json)).Message);
}

public sealed class ReferencePointTests
{
    static readonly ObjectiveKind[] Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs, ObjectiveKind.Latency];
    static readonly Dictionary<ObjectiveKind, double> Baseline = new()
    {
        [ObjectiveKind.Accuracy] = 0.9, [ObjectiveKind.Macs] = 100e6, [ObjectiveKind.Latency] = 20,
    };

    [Fact]
    public void DefaultsFromTheBaseline()
    {
        var r = ReferencePoint.FromBaseline(Objectives, Baseline);
        Assert.Equal(0.8, r[ObjectiveKind.Accuracy], 1e-15);
        Assert.Equal(110e6, r[ObjectiveKind.Macs], 1e-6);
        Assert.Equal(22, r[ObjectiveKind.Latency], 1e-12);
        Assert.Equal(100e6, ReferencePoint.FromBaseline(Objectives, Baseline, costMargin: 1)[ObjectiveKind.Macs]);
        Assert.Equal(0.7, ReferencePoint.FromBaseline(Objectives, Baseline, accuracyDrop: 0.2)[ObjectiveKind.Accuracy], 1e-15);
        // Never below an accuracy of 0.
        var poor = new Dictionary<ObjectiveKind, double>(Baseline) { [ObjectiveKind.Accuracy] = 0.05 };
        Assert.Equal(0, ReferencePoint.FromBaseline(Objectives, poor)[ObjectiveKind.Accuracy]);
    }

    [Fact]
    public void ConstraintsTightenIt()
    {
        var constraints = ConstraintSet.Parse(["macs <= 0.4*baseline", "latency <= 30 ms", "accuracy >= baseline - 0.02", "accuracy <= 0.95"]);
        var r = ReferencePoint.FromBaseline(Objectives, Baseline, constraints);
        Assert.Equal(0.88, r[ObjectiveKind.Accuracy], 1e-15);   // the lower bound
        Assert.Equal(40e6, r[ObjectiveKind.Macs], 1e-6);        // the bound, tighter than 1.1 × baseline
        Assert.Equal(22, r[ObjectiveKind.Latency], 1e-12);      // 1.1 × baseline, tighter than the bound
    }

    [Fact]
    public void AnObjectiveWithoutBaselineNeedsABound()
    {
        ObjectiveKind[] objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Energy];
        var r = ReferencePoint.FromBaseline(objectives, Baseline, ConstraintSet.Parse(["energy <= 50 mJ"]));
        Assert.Equal(50, r[ObjectiveKind.Energy]);
        var e = Assert.Throws<InvalidOperationException>(() => ReferencePoint.FromBaseline(objectives, Baseline));
        Assert.Contains("no reference for energy", e.Message);
    }

    [Fact]
    public void CallerOverrides()
    {
        var r = ReferencePoint.FromBaseline(Objectives, Baseline).With(ObjectiveKind.Macs, 1e9);
        Assert.Equal(1e9, r[ObjectiveKind.Macs]);
        Assert.Equal(22, r[ObjectiveKind.Latency], 1e-12);
        var explicitPoint = new ReferencePoint([ObjectiveKind.Accuracy, ObjectiveKind.Macs], [0.5, 2e8]);
        Assert.Equal("accuracy 0.5, macs 2E+08", explicitPoint.ToString());
        Assert.Throws<KeyNotFoundException>(() => explicitPoint[ObjectiveKind.Energy]);
        Assert.Throws<ArgumentException>(() => new ReferencePoint([ObjectiveKind.Macs], [1, 2]));
        Assert.Throws<ArgumentException>(() => new ReferencePoint([ObjectiveKind.Macs, ObjectiveKind.Macs], [1, 2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReferencePoint.FromBaseline(Objectives, Baseline, costMargin: 0.9));
    }
}
