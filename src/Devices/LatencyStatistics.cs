namespace ParetoPrune.Devices;

/// <summary>
/// Summary statistics of run durations. Latency distributions are skewed (a run preempted by the OS takes
/// several times the typical one), so the median and its distribution-free confidence interval are what a
/// comparison should use; the mean and standard deviation are reported as well.
/// </summary>
public static class LatencyStatistics
{
    /// <summary>Summarises durations in milliseconds (at least one).</summary>
    public static LatencyDistribution Summarize(IReadOnlyList<double> durationsMs)
    {
        ArgumentNullException.ThrowIfNull(durationsMs);
        if (durationsMs.Count == 0) throw new ArgumentException("latency statistics need at least one run", nameof(durationsMs));
        double[] sorted = [.. durationsMs];
        foreach (double d in sorted)
            if (!double.IsFinite(d) || d < 0) throw new ArgumentException($"a run duration must be a finite non-negative number (got {d})", nameof(durationsMs));
        Array.Sort(sorted);
        int n = sorted.Length;
        double mean = sorted.Average();
        // Sample standard deviation (n − 1); 0 for a single run.
        double std = n > 1 ? Math.Sqrt(sorted.Sum(d => (d - mean) * (d - mean)) / (n - 1)) : 0;
        var (lower, upper) = MedianConfidenceRanks(n);
        return new LatencyDistribution(
            MedianMs: Percentile(sorted, 0.5), P10Ms: Percentile(sorted, 0.1), P90Ms: Percentile(sorted, 0.9),
            MeanMs: mean, StdMs: std, MinMs: sorted[0], MaxMs: sorted[^1],
            MedianCiLowerMs: sorted[lower - 1], MedianCiUpperMs: sorted[upper - 1], Runs: n);
    }

    public static LatencyDistribution Summarize(IReadOnlyList<TimeSpan> durations) =>
        Summarize(durations.Select(d => d.TotalMilliseconds).ToArray());

    /// <summary>
    /// The p-quantile of sorted values by linear interpolation between order statistics (Hyndman–Fan type 7, numpy's
    /// default): with h = (n − 1)·p, x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]) on 0-based x.
    /// </summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0) throw new ArgumentException("no values", nameof(sorted));
        if (p is < 0 or > 1 || double.IsNaN(p)) throw new ArgumentOutOfRangeException(nameof(p), p, "a quantile lies in [0, 1]");
        double h = (sorted.Count - 1) * p;
        int below = (int)Math.Floor(h);
        if (below >= sorted.Count - 1) return sorted[^1];
        return sorted[below] + (h - below) * (sorted[below + 1] - sorted[below]);
    }

    /// <summary>
    /// 1-based ranks (r, s) of the order statistics bounding an approximately 95 % confidence interval of the median,
    /// whatever the distribution: the number of runs below the true median is Binomial(n, ½), so with its normal
    /// approximation r = n/2 − 1.96·√n/2 and s = 1 + n/2 + 1.96·√n/2, each rounded to the nearest integer and kept
    /// within [1, n] (Campbell and Gardner, BMJ 1988). For n = 20 this gives (6, 15), the exact binomial interval.
    /// Below about 6 runs the interval is simply [min, max] and covers less than 95 %.
    /// </summary>
    public static (int Lower, int Upper) MedianConfidenceRanks(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "at least one run");
        double halfWidth = 1.96 * Math.Sqrt(n) / 2;
        int lower = (int)Math.Round(n / 2.0 - halfWidth, MidpointRounding.AwayFromZero);
        int upper = (int)Math.Round(1 + n / 2.0 + halfWidth, MidpointRounding.AwayFromZero);
        return (Math.Clamp(lower, 1, n), Math.Clamp(upper, 1, n));
    }
}
