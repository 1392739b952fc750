using System.Globalization;
using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// Hypervolume, hypervolume improvement, non-dominated sorting and crowding distance on random fronts whose points do
/// not dominate each other (the hardest case for hypervolume: every point counts), reference 1.1 on every axis.
/// </summary>
static class ParetoBenchmark
{
    public static void Run()
    {
        Console.WriteLine("| operation | objectives | points | result | time (median of 21) |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        foreach (var (d, n) in new[] { (2, 1000), (3, 200), (3, 1000), (4, 100), (4, 200), (5, 50), (5, 100) })
        {
            var front = Front(n, d, seed: 42);
            double[] reference = [.. Enumerable.Repeat(1.1, d)];
            double volume = 0;
            var t = Timing.Measure(() => volume = Hypervolume.Compute(front, reference), warmup: 3, runs: 21);
            Row("hypervolume", d, n, volume.ToString("0.000000", CultureInfo.InvariantCulture), t);
        }

        foreach (var (d, n) in new[] { (3, 200), (4, 100) })
        {
            var front = Front(n, d, seed: 42);
            double[] reference = [.. Enumerable.Repeat(1.1, d)];
            double[] candidate = [.. Enumerable.Repeat(0.55, d)];
            double improvement = 0;
            var t = Timing.Measure(() => improvement = Hypervolume.Improvement(front, candidate, reference), warmup: 3, runs: 21);
            Row("hypervolume improvement of one candidate", d, n, improvement.ToString("0.000000", CultureInfo.InvariantCulture), t);
        }

        // A cloud rather than a front: many fronts to peel.
        var random = new Random(7);
        List<double[]> cloud = [.. Enumerable.Range(0, 1000).Select(_ => new[] { random.NextDouble(), random.NextDouble(), random.NextDouble() })];
        int fronts = 0;
        var sort = Timing.Measure(() => fronts = NonDominatedSorting.Sort(cloud).Count, warmup: 3, runs: 21);
        Row("non-dominated sort (random cloud)", 3, 1000, $"{fronts} fronts", sort);
        var crowding = Timing.Measure(() => CrowdingDistance.Compute(cloud), warmup: 3, runs: 21);
        Row("crowding distance", 3, 1000, "", crowding);
    }

    static void Row(string operation, int d, int n, string result, (double Median, double Min, double Max) t) =>
        Console.WriteLine($"| {operation} | {d} | {n} | {result} | " +
                          $"{t.Median.ToString("0.000", CultureInfo.InvariantCulture)} ms (min {t.Min.ToString("0.000", CultureInfo.InvariantCulture)}, " +
                          $"max {t.Max.ToString("0.000", CultureInfo.InvariantCulture)}) |");

    /// <summary>n points on the positive part of the unit sphere: a concave front, no point dominating another.</summary>
    static List<double[]> Front(int n, int d, int seed)
    {
        var random = new Random(seed);
        var points = new List<double[]>(n);
        for (int k = 0; k < n; k++)
        {
            var p = new double[d];
            double norm = 0;
            for (int i = 0; i < d; i++)
            {
                // |N(0, 1)| by Box–Muller: normalised, a uniform direction in the positive orthant.
                p[i] = Math.Abs(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
                norm += p[i] * p[i];
            }
            norm = Math.Sqrt(norm);
            for (int i = 0; i < d; i++) p[i] /= norm;
            points.Add(p);
        }
        return points;
    }
}
