namespace ParetoPrune.Devices.Tests;

public class ProfileCalibrationTests
{
    // Known board: 1.5 ms + 400 ms/GMAC + 0.3 ms/MB + 0.08 ms/layer, 4.2 W while running.
    static double TrueMs(ModelCounts c) => 1.5 + 400 * c.Macs / 1e9 + 0.3 * c.WeightBytes / 1e6 + 0.08 * c.Layers;

    /// <summary>Models of independent sizes, latency and energy with multiplicative Gaussian noise of <paramref name="noise"/>.</summary>
    static List<(ModelCounts, double, double?)> Synthetic(double noise, int count = 40, Func<ModelCounts, double>? truth = null)
    {
        var random = new Random(7);
        double Gaussian() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        var samples = new List<(ModelCounts, double, double?)>();
        for (int i = 0; i < count; i++)
        {
            var c = new ModelCounts(Macs: (long)(random.NextDouble() * 5e8), WeightBytes: (long)(random.NextDouble() * 4e7),
                Layers: random.Next(5, 200));
            double ms = (truth ?? TrueMs)(c) * (1 + noise * Gaussian());
            samples.Add((c, ms, ms / 1000 * 4.2 * (1 + noise * Gaussian())));
        }
        return samples;
    }

    [Fact]
    public void RecoversExactCoefficientsWithoutNoise()
    {
        var fit = ProfileCalibration.Fit(Synthetic(0), "board", "Board", idleWatts: 2.5);
        var p = fit.Profile;
        Assert.Equal(1.5, p.FixedMs, 6);
        Assert.Equal(400, p.MsPerGmac, 6);
        Assert.Equal(0.3, p.MsPerMegabyte, 6);
        Assert.Equal(0.08, p.MsPerLayer, 6);
        Assert.Equal(4.2, p.ActiveWatts!.Value, 9);
        Assert.Equal(2.5, p.IdleWatts);
        Assert.True(fit.LatencyRmseMs < 1e-6 && fit.LatencyMaxRelativeError < 1e-6);
        Assert.Equal(40, fit.Samples);
    }

    /// <summary>Each model's left-out prediction is what a fit to the other models predicts for it; the interval factor is
    /// exp(1.645 × RMS of their log errors), near 1 without noise and wider with it.</summary>
    [Fact]
    public void LeaveOneOutErrorsAreFitsWithoutTheModelAndGiveTheInterval()
    {
        var exact = ProfileCalibration.Fit(Synthetic(0, count: 12), "board", "Board");
        Assert.All(exact.PerModel, m => Assert.True(Math.Abs(m.LeftOutMs - m.MeasuredMs) < 1e-6 * m.MeasuredMs, $"{m.LeftOutMs} against {m.MeasuredMs}"));
        Assert.Equal(1, exact.LatencyErrorFactor!.Value, 1e-6);
        Assert.Equal(exact.LatencyErrorFactor, exact.Profile.LatencyErrorFactor);

        var samples = Synthetic(0.1, count: 12);
        var noisy = ProfileCalibration.Fit(samples, "board", "Board");
        for (int i = 0; i < samples.Count; i++)
        {
            var others = ProfileCalibration.Fit([.. samples.Where((_, k) => k != i)], "others", "Board").Profile;
            Assert.Equal(others.EstimateLatencyMs(samples[i].Item1), noisy.PerModel[i].LeftOutMs, 1e-6);
            Assert.Equal(noisy.Profile.EstimateLatencyMs(samples[i].Item1), noisy.PerModel[i].FittedMs, 1e-6);
        }
        double rms = Math.Sqrt(noisy.PerModel.Average(m => Math.Pow(Math.Log(m.LeftOutMs / m.MeasuredMs), 2)));
        Assert.Equal(Math.Exp(1.645 * rms), noisy.LatencyErrorFactor!.Value, 9);
        Assert.InRange(noisy.LatencyErrorFactor.Value, 1.05, 1.6);
    }

    [Fact]
    public void RecoversCoefficientsFromNoisyMeasurements()
    {
        var fit = ProfileCalibration.Fit(Synthetic(0.02), "board", "Board");
        var p = fit.Profile;
        Assert.InRange(p.MsPerGmac, 400 * 0.95, 400 * 1.05);
        Assert.InRange(p.MsPerMegabyte, 0.3 * 0.8, 0.3 * 1.2);
        Assert.InRange(p.MsPerLayer, 0.08 * 0.8, 0.08 * 1.2);
        Assert.InRange(p.FixedMs, 1.5 * 0.8, 1.5 * 1.2);
        Assert.InRange(p.ActiveWatts!.Value, 4.2 * 0.98, 4.2 * 1.02);
        Assert.Null(p.IdleWatts);
        Assert.InRange(fit.LatencyMaxRelativeError, 0.01, 0.15);  // 2 % noise: errors of a few per cent
        Assert.InRange(fit.EnergyMaxRelativeError!.Value, 0.01, 0.15);
        Assert.Contains("Fitted by least squares to 40 models measured on Board", p.Description);
    }

    [Fact]
    public void CoefficientsStayNonNegative()
    {
        // A board with no per-layer cost, measured with noise: unconstrained least squares could go below zero.
        var fit = ProfileCalibration.Fit(Synthetic(0.03, truth: c => 1.5 + 400 * c.Macs / 1e9 + 0.3 * c.WeightBytes / 1e6), "b", "B");
        var p = fit.Profile;
        Assert.True(p.FixedMs >= 0 && p.MsPerGmac >= 0 && p.MsPerMegabyte >= 0 && p.MsPerLayer >= 0);
        Assert.InRange(p.MsPerLayer, 0, 0.01);
        Assert.InRange(p.MsPerGmac, 400 * 0.93, 400 * 1.07);
    }

    [Fact]
    public void CollinearCountsStillFit()
    {
        // Weights proportional to MACs in every sample: the split between them is undetermined, the fit is not.
        var samples = Enumerable.Range(1, 8).Select(i =>
        {
            var c = new ModelCounts(i * 50_000_000L, i * 1_000_000L, 20);
            return (c, TrueMs(c), (double?)null);
        }).ToList();
        var fit = ProfileCalibration.Fit(samples, "b", "B");
        Assert.True(fit.LatencyMaxRelativeError < 1e-6, $"max relative error {fit.LatencyMaxRelativeError}");
        Assert.Null(fit.Profile.ActiveWatts);
        Assert.Null(fit.EnergyRmseJoules);
    }

    [Fact]
    public void RejectsTooFewOrImpossibleSamples()
    {
        var c = new ModelCounts(1, 1, 1);
        Assert.Throws<ArgumentException>(() => ProfileCalibration.Fit([(c, 1.0, null)], "b", "B"));
        Assert.Throws<ArgumentException>(() => ProfileCalibration.Fit([(c, 1.0, null), (c, -1.0, null)], "b", "B"));
        Assert.Throws<ArgumentException>(() => ProfileCalibration.Fit([(c, 1.0, 0.0), (c, 1.0, null)], "b", "B"));
    }
}
