namespace ParetoPrune.Objectives.Pareto;

/// <summary>Pareto dominance between points of the canonical space (every coordinate minimised, <see cref="ObjectiveSpace"/>).</summary>
public static class Dominance
{
    /// <summary>a is no worse than b anywhere and better somewhere.</summary>
    public static bool Dominates(ReadOnlySpan<double> a, ReadOnlySpan<double> b) => Compare(a, b) < 0;

    /// <summary>−1 when a dominates b, 1 when b dominates a, 0 when neither (equal points included).</summary>
    public static int Compare(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"points of {a.Length} and {b.Length} coordinates cannot be compared");
        bool aBetter = false, bBetter = false;
        for (int i = 0; i < a.Length; i++)
        {
            if (a[i] < b[i]) aBetter = true;
            else if (b[i] < a[i]) bBetter = true;
            else if (double.IsNaN(a[i]) || double.IsNaN(b[i])) throw new ArgumentException("a point has a NaN coordinate");
            if (aBetter && bBetter) return 0;
        }
        return aBetter ? -1 : bBetter ? 1 : 0;
    }

    /// <summary>
    /// Constraint domination (Deb 2000, as in NSGA-II): a feasible point (violation 0) beats an infeasible one; of two
    /// infeasible points the smaller total violation wins; otherwise — both feasible, or equal violations — ordinary
    /// dominance decides (as pymoo does; Optuna leaves equal violations incomparable).
    /// </summary>
    /// <param name="violationA">Total violation, ≥ 0, e.g. <see cref="ConstraintSet.TotalViolation"/>.</param>
    public static int ConstrainedCompare(ReadOnlySpan<double> a, double violationA, ReadOnlySpan<double> b, double violationB)
    {
        CheckViolation(violationA);
        CheckViolation(violationB);
        if (violationA < violationB) return -1;
        if (violationB < violationA) return 1;
        return Compare(a, b);
    }

    public static bool ConstrainedDominates(ReadOnlySpan<double> a, double violationA, ReadOnlySpan<double> b, double violationB) =>
        ConstrainedCompare(a, violationA, b, violationB) < 0;

    internal static void CheckViolation(double violation)
    {
        if (!(violation >= 0) || double.IsInfinity(violation))
            throw new ArgumentOutOfRangeException(nameof(violation), violation, "a constraint violation is a finite number of at least 0 (0: feasible)");
    }
}
