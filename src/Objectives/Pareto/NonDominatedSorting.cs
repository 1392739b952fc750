namespace ParetoPrune.Objectives.Pareto;

/// <summary>Fast non-dominated sorting (Deb, Pratap, Agarwal, Meyarivan 2002): O(M·N²) comparisons, O(N²) memory.</summary>
public static class NonDominatedSorting
{
    /// <summary>
    /// The fronts, best first, each the indices of its points in ascending order. Front 0 holds the points no other point
    /// dominates, front k those dominated only by points of fronts &lt; k. Equal points never dominate each other and
    /// land in the same front.
    /// </summary>
    /// <param name="points">Canonical (all minimised) points of equal length.</param>
    /// <param name="violations">Total constraint violation of each point (0: feasible): dominance is then Deb's
    /// constraint domination, <see cref="Dominance.ConstrainedCompare"/>.</param>
    public static IReadOnlyList<int[]> Sort(IReadOnlyList<double[]> points, IReadOnlyList<double>? violations = null)
    {
        int n = points.Count;
        Validate(points, violations);
        var dominates = new List<int>[n]; // dominates[i]: the points i dominates
        var dominatedBy = new int[n];     // how many points dominate i
        for (int i = 0; i < n; i++) dominates[i] = [];
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
            {
                int relation = violations is null
                    ? Dominance.Compare(points[i], points[j])
                    : Dominance.ConstrainedCompare(points[i], violations[i], points[j], violations[j]);
                if (relation < 0) { dominates[i].Add(j); dominatedBy[j]++; }
                else if (relation > 0) { dominates[j].Add(i); dominatedBy[i]++; }
            }

        var fronts = new List<int[]>();
        var current = Enumerable.Range(0, n).Where(i => dominatedBy[i] == 0).ToList();
        while (current.Count > 0)
        {
            current.Sort();
            fronts.Add([.. current]);
            var next = new List<int>();
            foreach (int i in current)
                foreach (int j in dominates[i])
                    if (--dominatedBy[j] == 0) next.Add(j);
            current = next;
        }
        return fronts;
    }

    /// <summary>The indices of the non-dominated points (front 0), ascending.</summary>
    public static int[] FirstFront(IReadOnlyList<double[]> points, IReadOnlyList<double>? violations = null)
    {
        Validate(points, violations);
        var front = new List<int>();
        for (int i = 0; i < points.Count; i++)
        {
            bool dominated = false;
            for (int j = 0; j < points.Count && !dominated; j++)
                dominated = j != i && (violations is null
                    ? Dominance.Compare(points[j], points[i]) < 0
                    : Dominance.ConstrainedCompare(points[j], violations[j], points[i], violations[i]) < 0);
            if (!dominated) front.Add(i);
        }
        return [.. front];
    }

    static void Validate(IReadOnlyList<double[]> points, IReadOnlyList<double>? violations)
    {
        if (violations is not null && violations.Count != points.Count)
            throw new ArgumentException($"{points.Count} points but {violations.Count} violations", nameof(violations));
        for (int i = 0; i < points.Count; i++)
        {
            if (points[i] is null) throw new ArgumentException($"point {i} is null", nameof(points));
            if (points[i].Length != points[0].Length)
                throw new ArgumentException($"point {i} has {points[i].Length} coordinates, point 0 has {points[0].Length}", nameof(points));
            if (points[i].Any(double.IsNaN)) throw new ArgumentException($"point {i} has a NaN coordinate", nameof(points));
            if (violations is not null) Dominance.CheckViolation(violations[i]);
        }
    }
}
