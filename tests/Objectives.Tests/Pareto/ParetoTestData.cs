namespace ParetoPrune.Objectives.Tests.Pareto;

/// <summary>Seeded random point sets for the Pareto tests.</summary>
static class ParetoTestData
{
    public const double Reference = 1.1;

    public static double[] ReferencePoint(int d) => [.. Enumerable.Repeat(Reference, d)];

    /// <summary>
    /// n points near the positive unit sphere (a concave front, mostly mutually non-dominated, scaled by 0.8–1.2), plus,
    /// when <paramref name="extras"/>, dominated copies, exact duplicates, points outside the reference box and on its
    /// boundary.
    /// </summary>
    public static List<double[]> Front(int n, int d, int seed, bool extras = true)
    {
        var random = new Random(seed);
        var points = new List<double[]>();
        for (int k = 0; k < n; k++)
        {
            var p = new double[d];
            double norm = 0;
            for (int i = 0; i < d; i++) norm += (p[i] = Math.Abs(Gaussian(random))) * p[i];
            double scale = (0.8 + 0.4 * random.NextDouble()) / Math.Sqrt(norm);
            for (int i = 0; i < d; i++) p[i] = Math.Min(p[i] * scale, 1.05);
            points.Add(p);
        }
        if (!extras) return points;
        for (int k = 0; k < n / 5; k++)
        {
            var source = points[random.Next(n)];
            points.Add([.. source]);                                                  // duplicate
            points.Add([.. source.Select(v => v + 0.05 * random.NextDouble())]);      // dominated
        }
        var outside = new double[d];
        var boundary = new double[d];
        for (int i = 0; i < d; i++) outside[i] = boundary[i] = 0.01;
        outside[random.Next(d)] = Reference + 0.3;
        boundary[random.Next(d)] = Reference;
        points.Add(outside);
        points.Add(boundary);
        return points;
    }

    /// <summary>Points on a coarse grid, {0, 0.25, …, 1}ᵈ: many ties and duplicates.</summary>
    public static List<double[]> Grid(int n, int d, int seed, int levels = 5)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, d).Select(_ => random.Next(levels) / (double)(levels - 1)).ToArray())];
    }

    public static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}
