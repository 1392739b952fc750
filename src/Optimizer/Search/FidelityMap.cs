namespace ParetoPrune.Optimizer.Search;

/// <summary>
/// Accuracy at a longer fidelity predicted from a shorter one: a least-squares line through the trials seen at both,
/// its slope kept non-negative (more accurate after screening never predicts less accurate after fine-tuning) and the
/// prediction capped at 1. Fine-tuning lifts every candidate, the weak ones most, and a line captures both.
/// </summary>
sealed record FidelityMap(double Intercept, double Slope)
{
    public double Predict(double accuracy) => Math.Min(1, Intercept + Slope * accuracy);

    /// <summary>The line through (short, long) pairs; with one distinct short value, a shift; null without pairs.</summary>
    public static FidelityMap? Fit(IReadOnlyList<(double Short, double Long)> pairs)
    {
        if (pairs.Count == 0) return null;
        double mx = pairs.Average(p => p.Short), my = pairs.Average(p => p.Long);
        double sxx = pairs.Sum(p => (p.Short - mx) * (p.Short - mx)), sxy = pairs.Sum(p => (p.Short - mx) * (p.Long - my));
        if (pairs.Count < 2 || sxx < 1e-12) return new FidelityMap(my - mx, 1);
        double slope = Math.Max(0, sxy / sxx);
        return new FidelityMap(my - slope * mx, slope);
    }
}
