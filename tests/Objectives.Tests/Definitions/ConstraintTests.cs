namespace ParetoPrune.Objectives.Tests.Definitions;

public sealed class ConstraintTests
{
    [Theory]
    [InlineData("latency <= 20 ms", ObjectiveKind.Latency, "<=", 20, false, 0)]
    [InlineData("latency<=20ms", ObjectiveKind.Latency, "<=", 20, false, 0)]
    [InlineData("latency ≤ 20 ms", ObjectiveKind.Latency, "<=", 20, false, 0)]
    [InlineData("latency <= 0.02 s", ObjectiveKind.Latency, "<=", 20, false, 0)]
    [InlineData("latency <= 500 us", ObjectiveKind.Latency, "<=", 0.5, false, 0)]
    [InlineData("latency <= 500 µs", ObjectiveKind.Latency, "<=", 0.5, false, 0)]
    [InlineData("latency <= 15", ObjectiveKind.Latency, "<=", 15, false, 0)]
    [InlineData("energy <= 50 mJ", ObjectiveKind.Energy, "<=", 50, false, 0)]
    [InlineData("energy <= 0.05 J", ObjectiveKind.Energy, "<=", 50, false, 0)]
    [InlineData("energy <= 500 uJ", ObjectiveKind.Energy, "<=", 0.5, false, 0)]
    [InlineData("accuracy >= 0.9", ObjectiveKind.Accuracy, ">=", 0.9, false, 0)]
    [InlineData("accuracy >= 90%", ObjectiveKind.Accuracy, ">=", 0.9, false, 0)]
    [InlineData("ACCURACY ≥ 90 %", ObjectiveKind.Accuracy, ">=", 0.9, false, 0)]
    [InlineData("accuracy >= baseline - 0.01", ObjectiveKind.Accuracy, ">=", 1, true, -0.01)]
    [InlineData("accuracy >= baseline − 1%", ObjectiveKind.Accuracy, ">=", 1, true, -0.01)]
    [InlineData("accuracy >= 99% baseline", ObjectiveKind.Accuracy, ">=", 0.99, true, 0)]
    [InlineData("accuracy >= 99 % of baseline", ObjectiveKind.Accuracy, ">=", 0.99, true, 0)]
    [InlineData("macs <= 0.4*baseline", ObjectiveKind.Macs, "<=", 0.4, true, 0)]
    [InlineData("  macs  <=  0.4 * baseline  ", ObjectiveKind.Macs, "<=", 0.4, true, 0)]
    [InlineData("macs <= 0.4 x baseline", ObjectiveKind.Macs, "<=", 0.4, true, 0)]
    [InlineData("macs <= 0.4×baseline", ObjectiveKind.Macs, "<=", 0.4, true, 0)]
    [InlineData("macs <= baseline * 0.4", ObjectiveKind.Macs, "<=", 0.4, true, 0)]
    [InlineData("macs <= 40% baseline", ObjectiveKind.Macs, "<=", 0.4, true, 0)]
    [InlineData("macs >= 0.2*BASELINE", ObjectiveKind.Macs, ">=", 0.2, true, 0)]
    [InlineData("flops <= 0.5*baseline", ObjectiveKind.Macs, "<=", 0.5, true, 0)]
    [InlineData("macs <= 300M", ObjectiveKind.Macs, "<=", 300e6, false, 0)]
    [InlineData("macs <= 1.5 G", ObjectiveKind.Macs, "<=", 1.5e9, false, 0)]
    [InlineData("params <= 250k", ObjectiveKind.Params, "<=", 250e3, false, 0)]
    [InlineData("params <= 2e6", ObjectiveKind.Params, "<=", 2e6, false, 0)]
    [InlineData("size <= 2 MiB", ObjectiveKind.DenseBytes, "<=", 2097152, false, 0)]
    [InlineData("bytes <= 2 MB", ObjectiveKind.DenseBytes, "<=", 2e6, false, 0)]
    [InlineData("compressed-bytes <= 512 KiB", ObjectiveKind.CompressedBytes, "<=", 524288, false, 0)]
    [InlineData("peak-memory <= 1.5 kB", ObjectiveKind.PeakActivationBytes, "<=", 1500, false, 0)]
    [InlineData("latency <= 0.9*baseline + 2 ms", ObjectiveKind.Latency, "<=", 0.9, true, 2)]
    [InlineData("latency <= baseline - 500 us", ObjectiveKind.Latency, "<=", 1, true, -0.5)]
    [InlineData("bytes <= baseline - 1 KiB", ObjectiveKind.DenseBytes, "<=", 1, true, -1024)]
    public void ParsesValidForms(string text, ObjectiveKind objective, string op, double value, bool relative, double offset)
    {
        var c = Constraint.Parse(text);
        Assert.Equal(objective, c.Objective);
        Assert.Equal(op == "<=" ? ConstraintOperator.AtMost : ConstraintOperator.AtLeast, c.Operator);
        Assert.Equal(value, c.Value, 1e-12 * Math.Abs(value));
        Assert.Equal(relative, c.RelativeToBaseline);
        Assert.Equal(offset, c.Offset, 1e-15);
        // The canonical text reads back to the same constraint.
        Assert.Equal(c, Constraint.Parse(c.ToString()));
    }

    [Fact]
    public void CanonicalText()
    {
        Assert.Equal("macs <= 0.4*baseline", Constraint.Parse("macs <= 40% of baseline").ToString());
        Assert.Equal("accuracy >= baseline - 0.01", Constraint.Parse("acc >= baseline - 1%").ToString());
        Assert.Equal("latency <= 20 ms", Constraint.Parse("time<=0.02s").ToString());
        Assert.Equal("energy <= 0.9*baseline + 5 mJ", Constraint.Parse("energy <= 90% baseline + 5 mJ").ToString());
        Assert.Equal("accuracy >= 0.9", Constraint.Parse("accuracy >= 90%").ToString());
    }

    [Theory]
    [InlineData("macs 0.4", "expected '<objective> <= <bound>' or '<objective> >= <bound>', e.g. 'latency <= 20 ms'")]
    [InlineData("macs < 5", "'<' is not supported: bounds are inclusive, write '<=' or '>='")]
    [InlineData("macs > 5", "'>' is not supported")]
    [InlineData("macs = 5", "'=' is not supported")]
    [InlineData("macs == 5", "'==' is not supported")]
    [InlineData("<= 5", "the objective is missing before '<='")]
    [InlineData("speed <= 5", "unknown objective 'speed': known objectives are accuracy, macs, params, bytes, compressed-bytes, latency, energy, peak-memory")]
    [InlineData("macs <=", "the bound is missing after '<='")]
    [InlineData("macs <= 20 ms", "unit 'ms' does not fit macs: write a plain number or one with k, M or G (300M)")]
    [InlineData("latency <= 20 mJ", "unit 'mJ' does not fit latency: write a time in ms, s or us (20 ms)")]
    [InlineData("energy <= 3 MB", "unit 'MB' does not fit energy: write an energy in mJ, J or uJ (50 mJ)")]
    [InlineData("bytes <= 3 M", "unit 'M' does not fit bytes")]
    [InlineData("accuracy >= 0.9 ms", "unit 'ms' does not fit accuracy: write a fraction or a percentage (0.9 or 90%)")]
    [InlineData("latency <= 20 parsecs", "unknown unit 'parsecs' for latency: write a time in ms, s or us")]
    [InlineData("macs <= 40%", "a percentage of macs is relative to the baseline: write 'macs <= 40% baseline'")]
    [InlineData("latency <= baseline + 10%", "a percentage offset means accuracy points; for latency scale the baseline instead, e.g. 'latency <= 110% baseline'")]
    [InlineData("macs <= 0.4 baseline", "expected '*' or '%' between the number and 'baseline', e.g. '0.4*baseline' or '40% baseline'")]
    [InlineData("macs <= 0.4 * of baseline", "expected 'baseline' after the factor")]
    [InlineData("macs <= baseline * x", "expected a number after 'baseline *'")]
    [InlineData("accuracy >= baseline -", "expected a number after the sign")]
    [InlineData("macs <= of baseline", "a bound relative to the baseline reads 'baseline - 0.01', '0.4*baseline' or '40% baseline'")]
    [InlineData("macs <= 5 6", "unexpected '6' after the bound")]
    [InlineData("macs <= baseline baseline", "unexpected 'baseline' after the bound")]
    [InlineData("macs <= abc", "expected a number or a bound relative to 'baseline', e.g. 'macs <= 300M'")]
    [InlineData("macs <= 1.2.3", "'1.2.3' is not a number")]
    [InlineData("macs <= 5 $", "unexpected '$' in the bound")]
    [InlineData("macs >= 1 <= 5", "one comparison per constraint")]
    public void ExplainsErrors(string text, string expected)
    {
        var e = Assert.Throws<FormatException>(() => Constraint.Parse(text));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith($"constraint '{text.Trim()}': ", e.Message);
    }

    [Fact]
    public void ResolvesAgainstTheBaseline()
    {
        var baseline = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 300e6, [ObjectiveKind.Accuracy] = 0.92 };
        Assert.Equal(120e6, Constraint.Parse("macs <= 0.4*baseline").Resolve(baseline), 1e-3);
        Assert.Equal(0.91, Constraint.Parse("accuracy >= baseline - 0.01").Resolve(baseline), 1e-15);
        Assert.Equal(50, Constraint.Parse("energy <= 50 mJ").Resolve(baseline));
        var e = Assert.Throws<InvalidOperationException>(() => Constraint.Parse("latency <= 0.5*baseline").Resolve(baseline));
        Assert.Contains("baseline's latency is not known", e.Message);
    }

    [Fact]
    public void ViolationsAreNormalisedByTheBaseline()
    {
        var baseline = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 100, [ObjectiveKind.Accuracy] = 0.9 };
        var macs = Constraint.Parse("macs <= 0.4*baseline");
        var accuracy = Constraint.Parse("accuracy >= baseline - 0.01");
        Assert.Equal(0, macs.Violation(40, baseline));
        Assert.Equal(0, macs.Violation(10, baseline));
        Assert.Equal(0, accuracy.Violation(0.95, baseline));
        // 10 MACs over the bound of 40 is 10 % of the baseline's 100; 0.09 short of 0.89 is 10 % of the baseline's 0.9.
        Assert.Equal(0.1, macs.Violation(50, baseline), 1e-12);
        Assert.Equal(0.1, accuracy.Violation(0.8, baseline), 1e-12);
        // No baseline value for the objective: by the bound, 10 mJ over 50 mJ.
        Assert.Equal(0.2, Constraint.Parse("energy <= 50 mJ").Violation(60, baseline), 1e-12);
        Assert.Throws<ArgumentException>(() => macs.Violation(double.NaN, baseline));
    }

    [Fact]
    public void RejectsMeaninglessRecords()
    {
        Assert.Throws<ArgumentException>(() => new Constraint(ObjectiveKind.Macs, ConstraintOperator.AtMost, 5, Offset: 1));
        Assert.Throws<ArgumentException>(() => new Constraint(ObjectiveKind.Macs, ConstraintOperator.AtMost, double.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Constraint((ObjectiveKind)99, ConstraintOperator.AtMost, 5));
    }
}
