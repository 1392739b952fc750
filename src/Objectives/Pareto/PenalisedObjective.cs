namespace ParetoPrune.Objectives.Pareto;

/// <summary>
/// One number to maximise, in the style of Choudhary et al. (2022), who fold accuracy and resource use into a single
/// Bayesian-optimisation objective:
/// <code>score = a / a₀ − λ · Σ_r max(0, r / t_r − 1)</code>
/// a the accuracy, a₀ the baseline's, r each resource with a target t_r (MACs, parameters, bytes, latency, energy …).
/// <list type="bullet">
/// <item>Resources are measured against their target as a ratio, so MACs (10⁸) and bytes (10⁶) weigh the same per
/// per cent of overshoot, and accuracy against the baseline, so 1 % of relative accuracy trades against 1 % of
/// overshoot at λ = 1. Both terms are thereby normalised by the baseline when targets are set from it
/// (<see cref="FromBaselineFractions"/>, or <c>macs &lt;= 0.4*baseline</c> with <see cref="FromConstraints"/>).</item>
/// <item>The penalty is a hinge: zero inside the budget. Among candidates within every target the score is plain
/// accuracy, so the optimum is the most accurate model that fits — the constrained problem itself once λ is large
/// enough (an exact penalty) — instead of a weighted sum that keeps trading accuracy for ever-smaller models.</item>
/// <item>It is linear beyond the target, so the search still sees a slope towards the budget from far outside it.</item>
/// </list>
/// λ sets how much relative accuracy one unit of relative overshoot is worth: 1 by default; raise it (say 10) to make
/// targets near-hard, lower it to allow a little overshoot for accuracy.
/// </summary>
public sealed class PenalisedObjective
{
    public const double DefaultLambda = 1.0;

    readonly Dictionary<ObjectiveKind, double> targets;

    /// <param name="baselineAccuracy">a₀, the unpruned model's accuracy (a fraction).</param>
    /// <param name="targets">t_r for each penalised resource, in the objective's unit; minimised objectives only.</param>
    public PenalisedObjective(double baselineAccuracy, IReadOnlyDictionary<ObjectiveKind, double> targets, double lambda = DefaultLambda)
    {
        if (!(baselineAccuracy > 0) || !double.IsFinite(baselineAccuracy))
            throw new ArgumentOutOfRangeException(nameof(baselineAccuracy), baselineAccuracy, "the baseline accuracy must be above 0");
        if (!(lambda >= 0) || !double.IsFinite(lambda))
            throw new ArgumentOutOfRangeException(nameof(lambda), lambda, "λ is a finite number of at least 0");
        foreach (var (objective, target) in targets)
        {
            if (objective.IsMaximised())
                throw new ArgumentException($"{objective.Name()} is the reward, not a resource: it cannot have a target", nameof(targets));
            if (!(target > 0) || !double.IsFinite(target))
                throw new ArgumentException($"the target for {objective.Name()} is {target}: it must be above 0", nameof(targets));
        }
        BaselineAccuracy = baselineAccuracy;
        Lambda = lambda;
        this.targets = new(targets);
    }

    public double BaselineAccuracy { get; }
    public double Lambda { get; }
    public IReadOnlyDictionary<ObjectiveKind, double> Targets => targets;

    /// <summary>Targets as fractions of the baseline: <c>{ macs: 0.4 }</c> asks for 40 % of the baseline's MACs.</summary>
    public static PenalisedObjective FromBaselineFractions(IReadOnlyDictionary<ObjectiveKind, double> baseline,
        IReadOnlyDictionary<ObjectiveKind, double> fractions, double lambda = DefaultLambda) =>
        new(BaselineValue(baseline, ObjectiveKind.Accuracy),
            fractions.ToDictionary(f => f.Key, f => f.Value * BaselineValue(baseline, f.Key)), lambda);

    /// <summary>
    /// Targets from the tightest upper bound of each minimised objective. Lower bounds (on accuracy) are not penalised:
    /// accuracy is the reward here; enforce them with <see cref="ConstraintSet.TotalViolation"/>.
    /// </summary>
    public static PenalisedObjective FromConstraints(ConstraintSet constraints, IReadOnlyDictionary<ObjectiveKind, double> baseline,
        double lambda = DefaultLambda)
    {
        var targets = new Dictionary<ObjectiveKind, double>();
        foreach (var objective in constraints.Objectives.Where(o => !o.IsMaximised()))
            if (constraints.Bounds(objective, baseline).Upper is { } upper)
                targets[objective] = upper;
        return new(BaselineValue(baseline, ObjectiveKind.Accuracy), targets, lambda);
    }

    /// <summary>λ · Σ_r max(0, r / t_r − 1): 0 within every target.</summary>
    /// <exception cref="ArgumentException">A targeted resource has no value.</exception>
    public double Penalty(IReadOnlyDictionary<ObjectiveKind, double> values)
    {
        double overshoot = 0;
        foreach (var (objective, target) in targets)
            overshoot += Math.Max(0, Value(values, objective) / target - 1);
        return Lambda * overshoot;
    }

    /// <summary>a / a₀ − penalty, to maximise: 1 for a model as accurate as the baseline within every target.</summary>
    public double Score(IReadOnlyDictionary<ObjectiveKind, double> values) =>
        Value(values, ObjectiveKind.Accuracy) / BaselineAccuracy - Penalty(values);

    static double Value(IReadOnlyDictionary<ObjectiveKind, double> values, ObjectiveKind objective) =>
        values.TryGetValue(objective, out double v) && double.IsFinite(v) ? v
            : throw new ArgumentException($"no finite {objective.Name()} value to score", nameof(values));

    static double BaselineValue(IReadOnlyDictionary<ObjectiveKind, double> baseline, ObjectiveKind objective) =>
        baseline.TryGetValue(objective, out double v) ? v
            : throw new ArgumentException($"the baseline has no {objective.Name()}", nameof(baseline));
}
