namespace ParetoPrune.Objectives.Pareto;

/// <summary>
/// Exact hypervolume of points in the canonical space (every coordinate minimised): the volume of the union of the
/// boxes [p, reference]. Points with any coordinate at or beyond the reference add nothing and are dropped; dominated
/// and repeated points are allowed. Two objectives: a sort and a sweep, O(n log n). Three: a sweep along the third axis
/// keeping the two-dimensional staircase and its area up to date, O(n log n) plus the list moves (Beume et al. 2009,
/// simplified). Four or more: WFG (While, Bradstreet, Barone 2012), each point's exclusive volume as its box minus the
/// hypervolume of its limit set; points sorted on the last axis, so every limit set lies in one fewer dimension and the
/// recursion ends in the three-dimensional sweep.
/// </summary>
public static class Hypervolume
{
    /// <exception cref="ArgumentException">The reference is empty or not finite, a point has another number of
    /// coordinates, or a coordinate is NaN or −∞.</exception>
    public static double Compute(IReadOnlyList<double[]> points, ReadOnlySpan<double> reference)
    {
        double[] r = CheckReference(reference);
        return Exact(Inside(points, r), r, baseDimension: 3);
    }

    /// <summary>
    /// HV(front ∪ {candidate}) − HV(front): the volume only the candidate dominates, 0 when the front dominates it or it
    /// lies outside the reference. Computed as the candidate's box minus the hypervolume of the front clipped to it
    /// (each point p replaced by max(p, candidate): the part of p's box inside the candidate's), one hypervolume of at
    /// most |front| points instead of two.
    /// </summary>
    public static double Improvement(IReadOnlyList<double[]> front, ReadOnlySpan<double> candidate, ReadOnlySpan<double> reference)
    {
        double[] r = CheckReference(reference);
        var inside = Inside(front, r);
        if (candidate.Length != r.Length)
            throw new ArgumentException($"the candidate has {candidate.Length} coordinates, the reference {r.Length}", nameof(candidate));
        double[] c = candidate.ToArray();
        if (c.Any(v => double.IsNaN(v) || double.IsNegativeInfinity(v)))
            throw new ArgumentException("the candidate has a coordinate that is NaN or −∞", nameof(candidate));
        for (int i = 0; i < c.Length; i++)
            if (c[i] >= r[i]) return 0;
        var clipped = new List<double[]>(inside.Count);
        foreach (var p in inside)
        {
            var q = new double[r.Length];
            for (int i = 0; i < q.Length; i++) q[i] = Math.Max(p[i], c[i]);
            clipped.Add(q);
        }
        return Math.Max(0, Box(c, r, r.Length) - Exact(clipped, r, baseDimension: 3));
    }

    /// <summary>WFG all the way down to <paramref name="baseDimension"/> (1, 2 or 3), where the specialised algorithm takes
    /// over: lets tests check the algorithms against each other.</summary>
    internal static double ComputeWfg(IReadOnlyList<double[]> points, ReadOnlySpan<double> reference, int baseDimension)
    {
        double[] r = CheckReference(reference);
        var inside = Inside(points, r);
        return inside.Count == 0 ? 0 : Wfg(NonDominated(inside, r.Length), r, r.Length, baseDimension);
    }

    static double Exact(List<double[]> inside, double[] r, int baseDimension) => inside.Count == 0 ? 0 : r.Length switch
    {
        1 => r[0] - inside.Min(p => p[0]),
        2 => Area2D(inside, r[0], r[1]),
        3 => Volume3D(inside, r),
        _ => Wfg(NonDominated(inside, r.Length), r, r.Length, baseDimension),
    };

    static double[] CheckReference(ReadOnlySpan<double> reference)
    {
        if (reference.Length == 0) throw new ArgumentException("the reference point has no coordinates", nameof(reference));
        foreach (double v in reference)
            if (!double.IsFinite(v)) throw new ArgumentException($"the reference point has a coordinate {v}: it must be finite", nameof(reference));
        return reference.ToArray();
    }

    /// <summary>The points strictly inside the reference box (a point on its boundary has no volume).</summary>
    static List<double[]> Inside(IReadOnlyList<double[]> points, double[] r)
    {
        var inside = new List<double[]>(points.Count);
        for (int k = 0; k < points.Count; k++)
        {
            var p = points[k];
            if (p is null || p.Length != r.Length)
                throw new ArgumentException($"point {k} has {p?.Length ?? 0} coordinates, the reference {r.Length}", nameof(points));
            bool keep = true;
            for (int i = 0; i < p.Length; i++)
            {
                if (double.IsNaN(p[i]) || double.IsNegativeInfinity(p[i]))
                    throw new ArgumentException($"point {k} has a coordinate {p[i]}", nameof(points));
                keep &= p[i] < r[i];
            }
            if (keep) inside.Add(p);
        }
        return inside;
    }

    static double Box(double[] p, double[] r, int dimensions)
    {
        double volume = 1;
        for (int i = 0; i < dimensions; i++) volume *= r[i] - p[i];
        return volume;
    }

    /// <summary>Sort on x, then each point that lowers the best y so far adds the strip between its y and that one.</summary>
    static double Area2D(List<double[]> points, double rx, double ry)
    {
        points.Sort((a, b) => a[0] != b[0] ? a[0].CompareTo(b[0]) : a[1].CompareTo(b[1]));
        double area = 0, bestY = ry;
        foreach (var p in points)
            if (p[1] < bestY)
            {
                area += (rx - p[0]) * (bestY - p[1]);
                bestY = p[1];
            }
        return area;
    }

    /// <summary>
    /// Sweep z upwards; between consecutive z the dominated region is a prism over the staircase of the points below,
    /// whose area is updated as each point is inserted.
    /// </summary>
    static double Volume3D(List<double[]> points, double[] r)
    {
        points.Sort((a, b) => a[2].CompareTo(b[2]));
        var xs = new List<double>(points.Count);  // the staircase: x strictly rising, y strictly falling
        var ys = new List<double>(points.Count);
        double area = 0, volume = 0;
        for (int k = 0; k < points.Count; k++)
        {
            var p = points[k];
            area += Insert(xs, ys, p[0], p[1], r[0], r[1]);
            double nextZ = k + 1 < points.Count ? points[k + 1][2] : r[2];
            volume += area * (nextZ - p[2]);
        }
        return volume;
    }

    /// <summary>Adds (x, y) to the staircase and returns the area it adds: ∫ from x to rx of max(0, h(u) − y) du, h the
    /// staircase's height at u. The points it dominates leave the staircase.</summary>
    static double Insert(List<double> xs, List<double> ys, double x, double y, double rx, double ry)
    {
        int i = xs.BinarySearch(x);
        if (i < 0) i = ~i;                                  // first index with xs[i] ≥ x (x values are unique)
        if (i > 0 && ys[i - 1] <= y) return 0;             // a point to the left is at least as low
        if (i < xs.Count && xs[i] == x && ys[i] <= y) return 0;
        double currentX = x, height = i > 0 ? ys[i - 1] : ry, added = 0;
        int j = i;
        for (; j < xs.Count && ys[j] >= y; j++)            // dominated by (x, y): their steps are filled in
        {
            added += (xs[j] - currentX) * (height - y);
            currentX = xs[j];
            height = ys[j];
        }
        added += ((j < xs.Count ? xs[j] : rx) - currentX) * (height - y);
        xs.RemoveRange(i, j - i);
        ys.RemoveRange(i, j - i);
        xs.Insert(i, x);
        ys.Insert(i, y);
        return added;
    }

    /// <summary>
    /// HV of points strictly inside r, in their first <paramref name="d"/> coordinates. Sorted with the last coordinate
    /// falling, every later point q has q_last ≤ p_last, so the part of p's box that no later point covers is
    /// (r_last − p_last) × [its (d−1)-box − HV_{d−1}(limit set)], the limit set being max(p, q) for the later q.
    /// Summed over p this is the whole volume (each term is HV({p, later}) − HV(later)).
    /// </summary>
    static double Wfg(List<double[]> points, double[] r, int d, int baseDimension)
    {
        int n = points.Count;
        if (n == 0) return 0;
        if (n == 1) return Box(points[0], r, d);
        if (d <= baseDimension)
            return d switch
            {
                1 => r[0] - points.Min(p => p[0]),
                2 => Area2D(points, r[0], r[1]),
                _ => Volume3D(points, r),
            };

        int last = d - 1;
        points.Sort((a, b) => b[last].CompareTo(a[last]));
        double volume = 0;
        for (int k = 0; k < n; k++)
        {
            var p = points[k];
            double inclusive = Box(p, r, last);
            if (k + 1 < n)
            {
                var limit = new List<double[]>(n - k - 1);
                for (int j = k + 1; j < n; j++)
                {
                    var q = points[j];
                    var m = new double[last];
                    for (int i = 0; i < last; i++) m[i] = Math.Max(p[i], q[i]);
                    limit.Add(m);
                }
                inclusive -= Wfg(NonDominated(limit, last), r, last, baseDimension);
            }
            volume += (r[last] - p[last]) * inclusive;
        }
        return volume;
    }

    /// <summary>The points no other point weakly dominates, one of each repeated point, in their first d coordinates.
    /// In lexicographic order a point can only be dominated by one before it.</summary>
    static List<double[]> NonDominated(List<double[]> points, int d)
    {
        points.Sort((a, b) =>
        {
            for (int i = 0; i < d; i++)
                if (a[i] != b[i]) return a[i].CompareTo(b[i]);
            return 0;
        });
        var kept = new List<double[]>(points.Count);
        foreach (var p in points)
        {
            bool dominated = false;
            foreach (var q in kept)
            {
                int i = 0;
                while (i < d && q[i] <= p[i]) i++;
                if (i == d) { dominated = true; break; }
            }
            if (!dominated) kept.Add(p);
        }
        return kept;
    }
}
