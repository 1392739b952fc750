using MathNet.Numerics.LinearAlgebra;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Optimizer.Tests.Sampling;

public class GaussianProcessTests
{
    static double[][] RandomPoints(int count, int dimensions, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, dimensions).Select(_ => random.NextDouble()).ToArray())];
    }

    static double Std(IReadOnlyList<double> v)
    {
        double mean = v.Average();
        return Math.Sqrt(v.Sum(t => (t - mean) * (t - mean)) / v.Count);
    }

    /// <summary>Independent Matérn 5/2 with ARD, written from the textbook form (Rasmussen &amp; Williams eq. 4.17).</summary>
    static double Matern(double[] a, double[] b, double[] lengthScales, double signalVariance)
    {
        double r = Math.Sqrt(a.Zip(b, lengthScales).Sum(t => Math.Pow((t.First - t.Second) / t.Third, 2)));
        return signalVariance * (1 + Math.Sqrt(5) * r + 5 * r * r / 3) * Math.Exp(-Math.Sqrt(5) * r);
    }

    /// <summary>−½ yᵀK⁻¹y − ½ log|K| − n/2 log 2π with MathNet's general inverse and LU determinant.</summary>
    static double DirectLml(double[][] x, double[] y, double[] lengthScales, double signalVariance, double noiseVariance)
    {
        int n = x.Length;
        var k = Matrix<double>.Build.Dense(n, n, (i, j) => Matern(x[i], x[j], lengthScales, signalVariance) + (i == j ? noiseVariance : 0));
        var yv = Vector<double>.Build.DenseOfArray(y);
        return -0.5 * (yv * (k.Inverse() * yv)) - 0.5 * Math.Log(k.Determinant()) - 0.5 * n * Math.Log(2 * Math.PI);
    }

    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(0.25, 0.950959921678633)]
    [InlineData(1.0, 0.5239941088318203)]
    [InlineData(2.5, 0.06351021454894375)]
    public void MaternKernelMatchesTheClosedForm(double r, double correlation)
    {
        // Closed-form values of (1 + √5r + 5r²/3)e^(−√5r), computed separately. Place b at scaled distance r from a with
        // ARD length scales 0.5 and 2: the offset splits r² equally between the two dimensions.
        var h = new GaussianProcessHyperparameters([0.5, 2], SignalVariance: 1.7, NoiseVariance: 1e-3);
        double[] a = [0.2, 0.4];
        double[] b = [a[0] + 0.5 * r / Math.Sqrt(2), a[1] - 2 * r / Math.Sqrt(2)];
        Assert.Equal(1.7 * correlation, GaussianProcess.Kernel(a, b, h), 12);
        Assert.Equal(correlation, GaussianProcess.Matern52(r), 14);
    }

    [Fact]
    public void LogMarginalLikelihoodEqualsADirectComputation()
    {
        var x = RandomPoints(25, 3, seed: 1);
        var random = new Random(2);
        double[] y = [.. x.Select(p => Math.Sin(4 * p[0]) + p[1] * p[2] + 0.1 * random.NextDouble())];
        double[] lengthScales = [0.3, 0.7, 1.4];
        double[] logParams = [.. lengthScales.Select(l => Math.Log(l)), Math.Log(1.3), Math.Log(0.02)];

        double lml = new GaussianProcessLikelihood(x, y).Evaluate(logParams, []);
        Assert.Equal(DirectLml(x, y, lengthScales, 1.3, 0.02), lml, 8);

        // The fitted model reports the LML of its own standardised targets (population std) at its hyperparameters.
        var gp = GaussianProcess.Fit(x, y, seed: 3);
        double mean = y.Average(), std = Std(y);
        var h = gp.Hyperparameters;
        Assert.Equal(DirectLml(x, [.. y.Select(v => (v - mean) / std)], h.LengthScales, h.SignalVariance, h.NoiseVariance), gp.LogMarginalLikelihood, 6);
    }

    [Fact]
    public void AnalyticGradientMatchesCentralDifferences()
    {
        var x = RandomPoints(30, 4, seed: 5);
        double[] y = [.. x.Select(p => Math.Cos(5 * p[0]) - p[1] + 0.5 * p[3] * p[3])];
        double[] logParams = [Math.Log(0.3), Math.Log(0.8), Math.Log(1.5), Math.Log(0.2), Math.Log(1.3), Math.Log(0.05)];
        var likelihood = new GaussianProcessLikelihood(x, y);
        var gradient = new double[logParams.Length];
        likelihood.Evaluate(logParams, gradient);

        const double step = 1e-5;
        for (int i = 0; i < logParams.Length; i++)
        {
            double[] plus = (double[])logParams.Clone(), minus = (double[])logParams.Clone();
            plus[i] += step;
            minus[i] -= step;
            double numeric = (likelihood.Evaluate(plus, []) - likelihood.Evaluate(minus, [])) / (2 * step);
            // Central differences err by O(step²·f‴) + O(ε·|f|/step) ≈ 1e-9 here; 1e-5 leaves a wide margin.
            Assert.True(Math.Abs(numeric - gradient[i]) < 1e-5 * Math.Max(1, Math.Abs(numeric)),
                        $"parameter {i}: analytic {gradient[i]}, numeric {numeric}");
        }
    }

    [Fact]
    public void WithTinyNoiseThePosteriorInterpolatesAndRevertsToThePriorFarAway()
    {
        var x = RandomPoints(12, 2, seed: 7);
        double[] y = [.. x.Select(p => 3 + 2 * Math.Sin(5 * p[0]) * p[1])];
        var gp = GaussianProcess.Create(x, y, new GaussianProcessHyperparameters([0.3, 0.4], SignalVariance: 1.5, NoiseVariance: 1e-6));
        double variance = Std(y) * Std(y);

        for (int i = 0; i < x.Length; i++)
        {
            var (m, v) = gp.Predict(x[i]);
            Assert.True(Math.Abs(m - y[i]) < 1e-3 * Std(y), $"point {i}: mean {m}, target {y[i]}");
            Assert.True(v < 1e-4 * variance, $"point {i}: variance {v}");
        }

        // Tens of length scales from every point the kernel is ~e^(−√5·30): the posterior is the prior in original units.
        var (farMean, farVariance) = gp.Predict([10.0, -10.0]);
        Assert.Equal(y.Average(), farMean, 9);
        Assert.Equal(1.5 * variance, farVariance, 9);
    }

    [Fact]
    public void ArdFindsTheRelevantDimensionAndPredictsHeldOutPoints()
    {
        var x = RandomPoints(40, 5, seed: 11);
        double[] y = [.. x.Select(p => Math.Sin(6 * p[0]))];
        var gp = GaussianProcess.Fit(x, y, seed: 1);

        var ls = gp.Hyperparameters.LengthScales;
        Assert.True(5 * ls[0] < ls.Skip(1).Min(), $"length scales {string.Join(", ", ls)}");

        var test = RandomPoints(200, 5, seed: 12);
        double[] truth = [.. test.Select(p => Math.Sin(6 * p[0]))];
        var means = new double[test.Length];
        var variances = new double[test.Length];
        gp.Predict(test, means, variances);
        double rmse = Math.Sqrt(means.Zip(truth).Average(t => (t.First - t.Second) * (t.First - t.Second)));
        Assert.True(rmse < 0.05 * Std(truth), $"RMSE {rmse} against std {Std(truth)}");
    }

    [Fact]
    public void NoisyDataYieldTheirNoiseLevelAndALatentVarianceBelowIt()
    {
        var random = new Random(3);
        double Gauss() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
        double[][] x = [.. Enumerable.Range(0, 80).Select(_ => new[] { random.NextDouble(), random.NextDouble() })];
        double[] y = [.. x.Select(p => Math.Sin(6 * p[0]) + 0.1 * Gauss())];
        var gp = GaussianProcess.Fit(x, y, seed: 0);

        // Noise variance 0.01 in original units; a variance estimated from 80 residuals is off by ~√(2/80) ≈ 16%, so a
        // factor of 2 either way is a > 4σ miss.
        double noise = gp.Hyperparameters.NoiseVariance * Std(y) * Std(y);
        Assert.InRange(noise, 0.005, 0.02);
        // Predict reports the latent function's variance, which averaging neighbours pushes below the noise at the data.
        Assert.All(x, p => Assert.InRange(gp.Predict(p).Variance, 0, noise));
    }

    [Fact]
    public void BatchPredictionEqualsSinglePredictions()
    {
        var x = RandomPoints(20, 3, seed: 13);
        double[] y = [.. x.Select(p => p[0] - 2 * p[1] * p[2])];
        var gp = GaussianProcess.Fit(x, y, seed: 2, restarts: 0);
        var test = RandomPoints(50, 3, seed: 14);
        var means = new double[50];
        var variances = new double[50];
        gp.Predict(test, means, variances);
        for (int i = 0; i < test.Length; i++)
        {
            var (m, v) = gp.Predict(test[i]);
            Assert.Equal(m, means[i]);
            Assert.Equal(v, variances[i]);
            Assert.True(v >= 0);
        }
    }

    [Fact]
    public void FitIsDeterministicForASeed()
    {
        var x = RandomPoints(30, 4, seed: 15);
        double[] y = [.. x.Select(p => p[0] * p[0] + Math.Sin(3 * p[2]))];
        var a = GaussianProcess.Fit(x, y, seed: 7);
        var b = GaussianProcess.Fit(x, y, seed: 7);
        Assert.Equal(a.Hyperparameters.LengthScales, b.Hyperparameters.LengthScales);
        Assert.Equal(a.Hyperparameters.SignalVariance, b.Hyperparameters.SignalVariance);
        Assert.Equal(a.Hyperparameters.NoiseVariance, b.Hyperparameters.NoiseVariance);
        Assert.Equal(a.LogMarginalLikelihood, b.LogMarginalLikelihood);
        Assert.Equal(30, a.Count);
    }

    [Fact]
    public void HyperparametersStayInsideTheirBoxes()
    {
        var x = RandomPoints(30, 4, seed: 16);
        double[] y = [.. x.Select(p => Math.Sin(20 * p[0]) + p[3])];
        foreach (int seed in new[] { 0, 1, 2 })
        {
            var h = GaussianProcess.Fit(x, y, seed).Hyperparameters;
            Assert.All(h.LengthScales, l => Assert.InRange(l, 0.01, 20));
            Assert.InRange(h.SignalVariance, 0.05, 20);
            Assert.InRange(h.NoiseVariance, 1e-6, 1);
        }
    }

    [Fact]
    public void AWarmStartNeverEndsBelowItsStartingLikelihood()
    {
        var x = RandomPoints(25, 3, seed: 17);
        double[] y = [.. x.Select(p => Math.Exp(p[0]) - p[1])];
        var start = new GaussianProcessHyperparameters([0.9, 0.2, 3], SignalVariance: 2, NoiseVariance: 0.1);
        double startLml = GaussianProcess.Create(x, y, start).LogMarginalLikelihood;
        var fitted = GaussianProcess.Fit(x, y, seed: 0, restarts: 0, warmStart: start);
        Assert.True(fitted.LogMarginalLikelihood > startLml, $"{fitted.LogMarginalLikelihood} vs start {startLml}");
    }

    [Fact]
    public void ALengthScalePriorStopsNoiseFromShorteningLengthScalesAndRaisesThePosterior()
    {
        // 8 noisy points in 10 dimensions, only the first of which matters: maximum likelihood explains the noise with
        // a short length scale on an irrelevant dimension (a model that forgets everything a short step along it);
        // under the dimension-scaled prior every irrelevant dimension stays long, the relevant one stays the shortest,
        // and the fit scores at least as high under the posterior (likelihood + prior) as the prior-free fit does.
        var x = RandomPoints(8, 10, seed: 23);
        var noise = new Random(4);
        double[] y = [.. x.Select(p => Math.Sin(4 * p[0]) + 0.3 * (noise.NextDouble() - 0.5))];
        var prior = LengthScalePrior.DimensionScaled(10);
        var free = GaussianProcess.Fit(x, y, seed: 0);
        var map = GaussianProcess.Fit(x, y, seed: 0, prior: prior);
        string Show(GaussianProcess gp) => string.Join(", ", gp.Hyperparameters.LengthScales.Select(l => l.ToString("F2")));
        double ShortestIrrelevant(GaussianProcess gp) => gp.Hyperparameters.LengthScales.Skip(1).Min();
        Assert.True(ShortestIrrelevant(free) < 1, $"the test needs ML to overfit: {Show(free)}");
        Assert.True(ShortestIrrelevant(map) > 5 * ShortestIrrelevant(free), $"length scales {Show(map)} with the prior, {Show(free)} without");
        Assert.True(map.Hyperparameters.LengthScales[0] < ShortestIrrelevant(map), $"the relevant dimension should stay the shortest: {Show(map)}");
        double Posterior(GaussianProcess gp)
        {
            var h = gp.Hyperparameters;
            double[] log = [.. h.LengthScales.Select(l => Math.Log(l)), Math.Log(h.SignalVariance), Math.Log(h.NoiseVariance)];
            return gp.LogMarginalLikelihood + prior.AddTo(log, 10, []);
        }
        Assert.True(Posterior(map) >= Posterior(free) - 1e-6, $"MAP {Posterior(map)} below the ML fit's {Posterior(free)}");
    }

    [Fact]
    public void ConstantTargetsFitAndPredictTheConstant()
    {
        var x = RandomPoints(10, 2, seed: 19);
        var gp = GaussianProcess.Fit(x, [.. Enumerable.Repeat(4.2, 10)], seed: 0);
        var (m, v) = gp.Predict([0.5, 0.5]);
        Assert.Equal(4.2, m, 9);
        Assert.True(double.IsFinite(v) && v >= 0);

        var single = GaussianProcess.Fit([[0.3]], [1.5], seed: 0);
        Assert.Equal(1.5, single.Predict([0.3]).Mean, 6);
    }

    [Fact]
    public void BadDataIsRejected()
    {
        double[][] x = [[0.1, 0.2], [0.3, 0.4]];
        Assert.Throws<ArgumentException>(() => GaussianProcess.Fit([], [], seed: 0));
        Assert.Throws<ArgumentException>(() => GaussianProcess.Fit(x, [1.0], seed: 0));
        Assert.Throws<ArgumentException>(() => GaussianProcess.Fit([[0.1, 0.2], [0.3]], [1.0, 2.0], seed: 0));
        Assert.Throws<ArgumentException>(() => GaussianProcess.Fit(x, [1.0, double.NaN], seed: 0));
        Assert.Throws<ArgumentException>(() => GaussianProcess.Fit(x, [1.0, double.PositiveInfinity], seed: 0));
        Assert.Throws<ArgumentException>(() => GaussianProcess.Fit(x, [1.0, 2.0], seed: 0,
            warmStart: new GaussianProcessHyperparameters([0.5], 1, 0.01)));
        var gp = GaussianProcess.Fit(x, [1.0, 2.0], seed: 0);
        Assert.Throws<ArgumentException>(() => gp.Predict([0.5]));
    }
}

public class AcquisitionTests
{
    [Fact]
    public void NormalFunctionsMatchReferenceValues()
    {
        Assert.Equal(0.5, Acquisition.NormalCdf(0), 15);
        Assert.Equal(0.9750021048517795, Acquisition.NormalCdf(1.96), 14);
        Assert.Equal(0.15865525393145707, Acquisition.NormalCdf(-1), 14);
        // Deep lower tail: relative precision, not 1 − (1 − ε).
        Assert.True(Math.Abs(Acquisition.NormalCdf(-10) / 7.6198530241605e-24 - 1) < 1e-12);
        Assert.Equal(1 / Math.Sqrt(2 * Math.PI), Acquisition.NormalPdf(0), 15);
        Assert.Equal(Math.Exp(-2) / Math.Sqrt(2 * Math.PI), Acquisition.NormalPdf(-2), 15);
    }

    [Theory]
    [InlineData(1e-10)]
    [InlineData(0.01)]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(1 - 1e-6)]
    public void QuantileInvertsTheCdf(double p)
    {
        double z = Acquisition.NormalQuantile(p);
        Assert.True(Math.Abs(Acquisition.NormalCdf(z) / p - 1) < 1e-10, $"p {p}: z {z}, Φ(z) {Acquisition.NormalCdf(z)}");
    }

    [Fact]
    public void QuantileHandlesTheEnds()
    {
        Assert.Equal(double.NegativeInfinity, Acquisition.NormalQuantile(0));
        Assert.Equal(double.PositiveInfinity, Acquisition.NormalQuantile(1));
        Assert.Equal(1.959963984540054, Acquisition.NormalQuantile(0.975), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => Acquisition.NormalQuantile(1.5));
    }

    [Theory]
    [InlineData(0.3, 0.5, 0.5, true)]
    [InlineData(0.3, 0.5, 0.5, false)]
    [InlineData(-1.0, 2.0, 1.5, true)]
    public void ExpectedImprovementMatchesMonteCarlo(double mean, double stdDev, double best, bool maximise)
    {
        // Box–Muller draws from a seeded Random: independent of the code under test.
        const int samples = 1_000_000;
        var random = new Random(42);
        double sum = 0, sumSquares = 0;
        for (int i = 0; i < samples; i++)
        {
            double z = Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            double y = mean + stdDev * z;
            double improvement = Math.Max(maximise ? y - best : best - y, 0);
            sum += improvement;
            sumSquares += improvement * improvement;
        }
        double estimate = sum / samples;
        double standardError = Math.Sqrt((sumSquares / samples - estimate * estimate) / samples);
        // The estimate is normal around the truth with this standard error; 5 of them is a 1-in-3.5-million miss.
        Assert.InRange(Acquisition.ExpectedImprovement(mean, stdDev, best, maximise), estimate - 5 * standardError, estimate + 5 * standardError);
    }

    [Fact]
    public void ExpectedImprovementSpecialCasesAndMonotonicity()
    {
        // At mean = best, EI = σ φ(0).
        Assert.Equal(0.7 / Math.Sqrt(2 * Math.PI), Acquisition.ExpectedImprovement(1, 0.7, 1, maximise: true), 14);
        Assert.Equal(0.5, Acquisition.ExpectedImprovement(1.5, 0, 1, maximise: true));
        Assert.Equal(0, Acquisition.ExpectedImprovement(0.5, 0, 1, maximise: true));
        Assert.Equal(0.5, Acquisition.ExpectedImprovement(0.5, 0, 1, maximise: false));

        double previousMax = 0, previousMin = double.PositiveInfinity, previousSd = 0;
        for (double mean = -12; mean <= 12; mean += 0.05)
        {
            double up = Acquisition.ExpectedImprovement(mean, 1, 0, maximise: true);
            double down = Acquisition.ExpectedImprovement(mean, 1, 0, maximise: false);
            Assert.True(up >= previousMax && up >= 0, $"maximising EI fell at mean {mean}");
            Assert.True(down <= previousMin && down >= 0, $"minimising EI rose at mean {mean}");
            (previousMax, previousMin) = (up, down);
        }
        for (double sd = 0.05; sd < 5; sd += 0.01)
        {
            double ei = Acquisition.ExpectedImprovement(0, sd, 0.5, maximise: true);
            Assert.True(ei > previousSd, $"EI did not grow with σ at {sd}");
            previousSd = ei;
        }
        // Far below the incumbent EI is tiny but still positive (no cancellation to 0 or below).
        Assert.True(Acquisition.ExpectedImprovement(-20, 1, 0, maximise: true) is > 0 and < 1e-80);
    }

    [Fact]
    public void ProbabilityOfFeasibilityIsTheMassBetweenTheBounds()
    {
        double m = 0.4, s = 0.3;
        double Cdf(double v) => Acquisition.NormalCdf((v - m) / s);
        Assert.Equal(Cdf(0.6) - Cdf(0.1), Acquisition.ProbabilityOfFeasibility(m, s, 0.1, 0.6), 14);
        Assert.Equal(1 - Cdf(0.5), Acquisition.ProbabilityOfFeasibility(m, s, 0.5, null), 14);
        Assert.Equal(Cdf(0.5), Acquisition.ProbabilityOfFeasibility(m, s, null, 0.5), 14);
        Assert.Equal(1, Acquisition.ProbabilityOfFeasibility(m, s, null, null));
        Assert.Equal(1, Acquisition.ProbabilityOfFeasibility(m, 0, 0.1, 0.6));
        Assert.Equal(0, Acquisition.ProbabilityOfFeasibility(m, 0, 0.5, null));
        // Far upper tail: P(10 ≤ Z ≤ 11) = Φ(−10) − Φ(−11), kept to relative precision.
        double tail = Acquisition.ProbabilityOfFeasibility(0, 1, 10, 11);
        Assert.True(Math.Abs(tail / (Acquisition.NormalCdf(-10) - Acquisition.NormalCdf(-11)) - 1) < 1e-12 && tail > 7e-24, $"{tail}");
        Assert.Throws<ArgumentException>(() => Acquisition.ProbabilityOfFeasibility(0, 1, 2, 1));
    }

    [Fact]
    public void StratifiedSamplesAreSymmetricWithUnitVarianceInTheLimit()
    {
        foreach (int count in new[] { 1, 2, 7, 64 })
        {
            var z = Acquisition.StandardNormalSamples(count);
            Assert.Equal(count, z.Length);
            for (int i = 0; i < count; i++)
            {
                Assert.Equal(-z[i], z[count - 1 - i]);
                Assert.Equal(Acquisition.NormalQuantile((i + 0.5) / count), z[i], 12);
            }
            Assert.Equal(0, z.Sum(), 12);
        }
        double Variance(int count) => Acquisition.StandardNormalSamples(count).Average(v => v * v);
        // Stratified quantiles under-sample the tails: the variance rises towards 1 from below as count grows.
        Assert.True(Variance(16) < Variance(128) && Variance(128) < Variance(4096) && Variance(4096) < 1);
        Assert.InRange(Variance(4096), 0.998, 1);
    }
}
