using MathNet.Numerics;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>
/// Gaussian helpers and acquisition functions for the Bayesian-optimisation sampler, on a GP's posterior mean and
/// standard deviation at a candidate.
/// </summary>
public static class Acquisition
{
    static readonly double InverseSqrt2Pi = 1 / Math.Sqrt(2 * Math.PI);

    /// <summary>Standard normal density φ(z).</summary>
    public static double NormalPdf(double z) => InverseSqrt2Pi * Math.Exp(-0.5 * z * z);

    /// <summary>
    /// Standard normal CDF Φ(z) = ½ erfc(−z/√2): erfc keeps full relative precision in the lower tail, where
    /// 1 − ½ erfc(z/√2) would round to 0 (and EI and feasibility work with such tails).
    /// </summary>
    public static double NormalCdf(double z) => 0.5 * SpecialFunctions.Erfc(-z / Math.Sqrt(2));

    /// <summary>Standard normal quantile Φ⁻¹(p) = −√2 erfc⁻¹(2p); ±∞ at p = 0 and 1.</summary>
    public static double NormalQuantile(double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "a probability must lie in [0, 1]");
        if (p == 0) return double.NegativeInfinity;
        if (p == 1) return double.PositiveInfinity;
        return -Math.Sqrt(2) * SpecialFunctions.ErfcInv(2 * p);
    }

    /// <summary>
    /// Expected improvement over <paramref name="best"/> of Y ~ N(mean, stdDev²): E[max(Y − best, 0)] when maximising,
    /// E[max(best − Y, 0)] when minimising. Closed form σ (z Φ(z) + φ(z)), z = improvement / σ; with σ = 0 it is the
    /// plain improvement clipped at 0.
    /// </summary>
    public static double ExpectedImprovement(double mean, double stdDev, double best, bool maximise)
    {
        if (stdDev < 0 || double.IsNaN(stdDev)) throw new ArgumentOutOfRangeException(nameof(stdDev), stdDev, "a standard deviation must be non-negative");
        double improvement = maximise ? mean - best : best - mean;
        if (stdDev == 0) return Math.Max(improvement, 0);
        double z = improvement / stdDev;
        // Both terms carry full relative precision (erfc-based Φ), so the cancellation for z ≪ 0 costs only ~z² ulps.
        return Math.Max(improvement * NormalCdf(z) + stdDev * NormalPdf(z), 0);
    }

    /// <summary>
    /// P(lower ≤ Y ≤ upper) for Y ~ N(mean, stdDev²); a null bound is unbounded on that side. With σ = 0 it is 1 if the
    /// mean lies within the bounds, else 0.
    /// </summary>
    public static double ProbabilityOfFeasibility(double mean, double stdDev, double? lower, double? upper)
    {
        if (stdDev < 0 || double.IsNaN(stdDev)) throw new ArgumentOutOfRangeException(nameof(stdDev), stdDev, "a standard deviation must be non-negative");
        if (lower > upper) throw new ArgumentException($"lower bound {lower} exceeds upper bound {upper}");
        if (stdDev == 0) return (lower is null || mean >= lower) && (upper is null || mean <= upper) ? 1 : 0;
        double zl = lower is { } l ? (l - mean) / stdDev : double.NegativeInfinity;
        double zu = upper is { } u ? (u - mean) / stdDev : double.PositiveInfinity;
        // In the upper tail Φ(zu) − Φ(zl) is 1 − 1; the mirrored lower-tail difference Φ(−zl) − Φ(−zu) keeps the digits.
        double p = zl > 0 ? NormalCdf(-zl) - NormalCdf(-zu) : NormalCdf(zu) - NormalCdf(zl);
        return Math.Clamp(p, 0, 1);
    }

    /// <summary>
    /// <paramref name="count"/> stratified standard normal quantiles Φ⁻¹((i + ½)/count), i = 0 … count − 1, ascending
    /// and exactly antisymmetric (so their mean is 0): low-variance, deterministic Monte-Carlo over a posterior.
    /// Their variance is slightly below 1 and tends to 1 as count grows.
    /// </summary>
    public static double[] StandardNormalSamples(int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var samples = new double[count];
        for (int i = 0; i < count / 2; i++)
        {
            samples[i] = NormalQuantile((i + 0.5) / count);
            samples[count - 1 - i] = -samples[i];
        }
        return samples;   // an odd count leaves the middle quantile, Φ⁻¹(½) = 0, as initialised
    }
}
