using System.Globalization;

namespace ParetoPrune.Objectives;

/// <summary>
/// The reference point of a hypervolume, in each objective's own unit and direction: the worst value a candidate may
/// have and still add volume. Candidates at or beyond it in any objective count for nothing.
/// </summary>
public sealed class ReferencePoint
{
    /// <summary>Costs: the reference is the baseline's cost times this (10 % worse than the unpruned model).</summary>
    public const double DefaultCostMargin = 1.1;
    /// <summary>Accuracy without a lower bound: the reference is the baseline's accuracy minus this (10 points).</summary>
    public const double DefaultAccuracyDrop = 0.1;

    readonly ObjectiveKind[] objectives;
    readonly double[] values;

    public ReferencePoint(IReadOnlyList<ObjectiveKind> objectives, IReadOnlyList<double> values)
    {
        if (objectives.Count == 0) throw new ArgumentException("a reference point needs at least one objective", nameof(objectives));
        if (objectives.Count != values.Count)
            throw new ArgumentException($"{objectives.Count} objectives but {values.Count} values", nameof(values));
        if (objectives.Distinct().Count() != objectives.Count)
            throw new ArgumentException("an objective appears twice", nameof(objectives));
        for (int i = 0; i < values.Count; i++)
            if (!double.IsFinite(values[i]))
                throw new ArgumentException($"the reference for {objectives[i].Name()} must be a finite number, not {values[i]}", nameof(values));
        this.objectives = [.. objectives];
        this.values = [.. values];
    }

    public IReadOnlyList<ObjectiveKind> Objectives => objectives;
    public IReadOnlyList<double> Values => values;

    public double this[ObjectiveKind objective] => Array.IndexOf(objectives, objective) is var i and >= 0 ? values[i]
        : throw new KeyNotFoundException($"the reference point has no {objective.Name()}");

    /// <summary>A copy with one objective's reference replaced: the caller's override.</summary>
    public ReferencePoint With(ObjectiveKind objective, double value)
    {
        int i = Array.IndexOf(objectives, objective);
        if (i < 0) throw new KeyNotFoundException($"the reference point has no {objective.Name()}");
        double[] copy = [.. values];
        copy[i] = value;
        return new ReferencePoint(Objectives, copy);
    }

    /// <summary>
    /// The default reference point.
    /// <list type="bullet">
    /// <item>A minimised cost: <paramref name="costMargin"/> × the baseline's value (1.1 by default), or the tightest
    /// upper bound of <paramref name="constraints"/> if that is lower. The margin lets candidates that save nothing on
    /// one cost (latency often does not fall with MACs) still count for what they save on the others; a hard bound is
    /// taken as it is, so an infeasible candidate never adds volume.</item>
    /// <item>A maximised objective (accuracy): the tightest lower bound of <paramref name="constraints"/> if any, else the
    /// baseline's value minus <paramref name="accuracyDrop"/> (0.1: ten points, far more than the one or two that
    /// published pruning results lose, so every useful model counts and useless ones do not), at least 0.</item>
    /// </list>
    /// </summary>
    /// <exception cref="InvalidOperationException">An objective has neither a baseline value nor a bound to derive it from.</exception>
    public static ReferencePoint FromBaseline(IReadOnlyList<ObjectiveKind> objectives, IReadOnlyDictionary<ObjectiveKind, double> baseline,
        ConstraintSet? constraints = null, double costMargin = DefaultCostMargin, double accuracyDrop = DefaultAccuracyDrop)
    {
        if (!(costMargin >= 1) || double.IsInfinity(costMargin))
            throw new ArgumentOutOfRangeException(nameof(costMargin), costMargin, "the margin is a finite factor of at least 1");
        if (!(accuracyDrop >= 0) || double.IsInfinity(accuracyDrop))
            throw new ArgumentOutOfRangeException(nameof(accuracyDrop), accuracyDrop, "the drop is a finite amount of at least 0");
        constraints ??= ConstraintSet.Empty;
        var result = new double[objectives.Count];
        for (int i = 0; i < objectives.Count; i++)
        {
            var objective = objectives[i];
            bool hasBaseline = baseline.TryGetValue(objective, out double b);
            var (lower, upper) = constraints.Bounds(objective, baseline);
            double? reference = objective.IsMaximised()
                ? lower ?? (hasBaseline ? Math.Max(objective.Info().Quantity == Quantity.Fraction ? 0 : double.NegativeInfinity, b - accuracyDrop) : null)
                : hasBaseline ? Math.Min(costMargin * b, upper ?? double.PositiveInfinity) : upper;
            result[i] = reference ?? throw new InvalidOperationException(
                $"no reference for {objective.Name()}: the baseline has no {objective.Name()} and no constraint bounds it; give the reference point explicitly");
        }
        return new ReferencePoint(objectives, result);
    }

    public override string ToString() =>
        string.Join(", ", Objectives.Select((o, i) => $"{o.Name()} {values[i].ToString("G6", CultureInfo.InvariantCulture)}"));
}
