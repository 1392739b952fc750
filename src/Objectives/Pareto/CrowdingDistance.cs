namespace ParetoPrune.Objectives.Pareto;

/// <summary>NSGA-II's crowding distance: how much room a point of a front has around it.</summary>
public static class CrowdingDistance
{
    /// <summary>
    /// For each point of one front: Σ over objectives of (next − previous) / (max − min), neighbours taken in the
    /// order of that objective. The two extreme points of an objective get +∞, so fronts of one or two points are all
    /// +∞. An objective on which all points are equal has no extremes and adds 0 to every point (instead of 0/0).
    /// Ties are ordered by index, so the result is deterministic.
    /// </summary>
    public static double[] Compute(IReadOnlyList<double[]> front)
    {
        int n = front.Count;
        var distance = new double[n];
        if (n == 0) return distance;
        int m = front[0].Length;
        if (front.Any(p => p.Length != m)) throw new ArgumentException("the points have different numbers of coordinates", nameof(front));
        if (front.Any(p => p.Any(v => !double.IsFinite(v)))) throw new ArgumentException("a point has a coordinate that is not a finite number", nameof(front));
        if (n <= 2)
        {
            Array.Fill(distance, double.PositiveInfinity);
            return distance;
        }

        int[] order = new int[n];
        for (int k = 0; k < m; k++)
        {
            for (int i = 0; i < n; i++) order[i] = i;
            Array.Sort(order, (a, b) => front[a][k].CompareTo(front[b][k]) is var c and not 0 ? c : a.CompareTo(b));
            double min = front[order[0]][k], range = front[order[^1]][k] - min;
            if (range == 0) continue;
            distance[order[0]] = distance[order[^1]] = double.PositiveInfinity;
            for (int i = 1; i < n - 1; i++)
                distance[order[i]] += (front[order[i + 1]][k] - front[order[i - 1]][k]) / range;
        }
        return distance;
    }
}
