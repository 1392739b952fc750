namespace ParetoPrune.Objectives.Pareto;

/// <summary>
/// Turning several minimised objectives into one, ParEGO style (Knowles 2006; SMAC3's ParEGO draws fresh random
/// weights each iteration): normalise each objective to [0, 1], draw weights on the simplex, minimise the augmented
/// Chebyshev function. Unlike a weighted sum it reaches points in concave parts of the front.
/// </summary>
public static class Scalarization
{
    /// <summary>ParEGO's ρ: small enough that the max term decides, large enough to break its ties in favour of
    /// points better everywhere (so weakly dominated points never win).</summary>
    public const double DefaultRho = 0.05;

    /// <summary>
    /// max_i w_i·f_i + ρ·Σ_i w_i·f_i, to minimise. <paramref name="point"/> must be normalised so that 0 is the ideal
    /// and the objectives share a scale: <see cref="NormaliseByRange"/> (ParEGO's [0, 1]), or the baseline
    /// normalisation of <see cref="ObjectiveSpace"/> shifted by its ideal point.
    /// </summary>
    public static double AugmentedChebyshev(ReadOnlySpan<double> point, ReadOnlySpan<double> weights, double rho = DefaultRho)
    {
        if (point.Length != weights.Length)
            throw new ArgumentException($"{point.Length} objectives but {weights.Length} weights", nameof(weights));
        if (point.Length == 0) throw new ArgumentException("at least one objective", nameof(point));
        if (!(rho >= 0) || double.IsInfinity(rho)) throw new ArgumentOutOfRangeException(nameof(rho), rho, "ρ is a finite number of at least 0");
        double max = double.NegativeInfinity, sum = 0;
        for (int i = 0; i < point.Length; i++)
        {
            if (!(weights[i] >= 0)) throw new ArgumentException($"weight {i} is {weights[i]}: weights are at least 0", nameof(weights));
            double term = weights[i] * point[i];
            max = Math.Max(max, term);
            sum += term;
        }
        return max + rho * sum;
    }

    /// <summary>Weights drawn uniformly from the simplex (Dirichlet(1, …, 1): normalised exponential variates); they sum to 1.</summary>
    public static double[] RandomWeights(int dimensions, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(dimensions, 1);
        var w = new double[dimensions];
        double sum = 0;
        for (int i = 0; i < dimensions; i++) sum += w[i] = -Math.Log(1 - random.NextDouble()); // 1 − U ∈ (0, 1]: never log 0
        if (sum == 0) { Array.Fill(w, 1.0 / dimensions); return w; }                             // all draws exactly 0: vanishingly rare
        for (int i = 0; i < dimensions; i++) w[i] /= sum;
        return w;
    }

    /// <summary><paramref name="count"/> weight vectors from a seeded generator: the same seed gives the same weights.</summary>
    public static double[][] RandomWeights(int count, int dimensions, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => RandomWeights(dimensions, random))];
    }

    /// <summary>
    /// ParEGO's normalisation: each objective mapped linearly to [0, 1] over the given points (the best to 0, the worst
    /// to 1). An objective on which all points agree maps to 0.
    /// </summary>
    public static double[][] NormaliseByRange(IReadOnlyList<double[]> points)
    {
        if (points.Count == 0) return [];
        int m = points[0].Length;
        if (points.Any(p => p.Length != m)) throw new ArgumentException("the points have different numbers of coordinates", nameof(points));
        var result = points.Select(p => new double[m]).ToArray();
        for (int k = 0; k < m; k++)
        {
            double min = double.PositiveInfinity, max = double.NegativeInfinity;
            foreach (var p in points)
            {
                if (!double.IsFinite(p[k])) throw new ArgumentException("a point has a coordinate that is not a finite number", nameof(points));
                min = Math.Min(min, p[k]);
                max = Math.Max(max, p[k]);
            }
            double range = max - min;
            for (int i = 0; i < points.Count; i++) result[i][k] = range > 0 ? (points[i][k] - min) / range : 0;
        }
        return result;
    }
}
