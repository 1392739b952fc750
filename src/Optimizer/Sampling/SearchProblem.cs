using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>
/// What the samplers optimise: the objectives in the canonical minimised space normalised by the baseline, the
/// constraints, and which objectives are known exactly before a candidate is built (MACs, parameters, bytes, and latency
/// and energy when they come from a device profile). Only the others need surrogates.
/// </summary>
/// <remarks>
/// Accuracy depends on how much a candidate was trained, so during screening (BN recalibration only) a bound such as
/// "accuracy ≥ baseline − 1 %" would reject nearly everything: the screening front is therefore searched without accuracy
/// bounds, against a reference at chance accuracy, and accuracy bounds apply from the promotion stage on, where the
/// candidates have been fine-tuned (<see cref="ScreeningConstraints"/>).
/// </remarks>
public sealed class SearchProblem
{
    readonly Func<IReadOnlyList<int>, IReadOnlyDictionary<ObjectiveKind, double>> predict;

    public SearchProblem(SearchSpace space, IReadOnlyList<ObjectiveKind> objectives, ConstraintSet constraints,
                         IReadOnlyDictionary<ObjectiveKind, double> baseline, IReadOnlySet<ObjectiveKind> predicted,
                         Func<IReadOnlyList<int>, IReadOnlyDictionary<ObjectiveKind, double>> predict, int classes)
    {
        if (objectives.Count == 0) throw new ArgumentException("at least one objective");
        Space = space;
        Objectives = objectives;
        Constraints = constraints;
        Baseline = baseline;
        Predicted = predicted;
        this.predict = predict;
        Normalised = new ObjectiveSpace(objectives, baseline);
        ScreeningConstraints = new ConstraintSet(constraints.Where(c => !IsFidelityDependent(c.Objective)));
        ScreeningReference = ScreeningReferenceFor(objectives, constraints, baseline, classes);
        FinalReference = Normalised.ToPoint(ReferencePoint.FromBaseline(objectives, baseline, constraints));
        CostBounds = ScreeningConstraints.Where(c => c.IsUpperBound && predicted.Contains(c.Objective))
                                         .Select(c => (c.Objective, Limit: c.Resolve(baseline))).Where(b => b.Limit > 0).ToArray();
    }

    /// <summary>
    /// The screening stage's hypervolume reference, normalised: chance accuracy (a model no better than guessing adds
    /// nothing) and 1.1 × the baseline's costs, or a tighter bound of the constraints that hold at every fidelity.
    /// </summary>
    public static double[] ScreeningReferenceFor(IReadOnlyList<ObjectiveKind> objectives, ConstraintSet constraints,
                                                 IReadOnlyDictionary<ObjectiveKind, double> baseline, int classes)
    {
        var screening = new ConstraintSet(constraints.Where(c => !IsFidelityDependent(c.Objective)));
        var reference = ReferencePoint.FromBaseline(objectives, baseline, screening, accuracyDrop: 1);
        if (objectives.Contains(ObjectiveKind.Accuracy)) reference = reference.With(ObjectiveKind.Accuracy, 1.0 / Math.Max(2, classes));
        return new ObjectiveSpace(objectives, baseline).ToPoint(reference);
    }

    public SearchSpace Space { get; }
    public IReadOnlyList<ObjectiveKind> Objectives { get; }
    public ConstraintSet Constraints { get; }

    /// <summary>The constraints that hold at every fidelity (all but accuracy bounds): the screening stage enforces these.</summary>
    public ConstraintSet ScreeningConstraints { get; }

    public IReadOnlyDictionary<ObjectiveKind, double> Baseline { get; }
    public ObjectiveSpace Normalised { get; }

    /// <summary>Hypervolume reference of the screening stage, in <see cref="Normalised"/> coordinates.</summary>
    public double[] ScreeningReference { get; }

    /// <summary>Hypervolume reference of fine-tuned stages (accuracy bounded by the constraints, or baseline − 10 points).</summary>
    public double[] FinalReference { get; }

    /// <summary>Objectives (and constrained quantities) computed exactly from a configuration.</summary>
    public IReadOnlySet<ObjectiveKind> Predicted { get; }

    /// <summary>Objectives that need a surrogate: known only once a candidate is built and evaluated.</summary>
    public IReadOnlyList<ObjectiveKind> Observed => Objectives.Where(o => !Predicted.Contains(o)).ToArray();

    /// <summary>Only accuracy changes with training; costs, latency and energy are the same at every stage.</summary>
    public static bool IsFidelityDependent(ObjectiveKind kind) => kind == ObjectiveKind.Accuracy;

    /// <summary>Exact values of the predicted objectives and constrained quantities.</summary>
    public IReadOnlyDictionary<ObjectiveKind, double> Predict(IReadOnlyList<int> kept) => predict(kept);

    /// <summary>How far a configuration misses the constraints that can be checked before building it (0: none missed).</summary>
    public double PredictedViolation(IReadOnlyList<int> kept)
    {
        var values = Predict(kept);
        double total = 0;
        foreach (var c in ScreeningConstraints)
            if (values.TryGetValue(c.Objective, out double v)) total += c.Violation(v, Baseline);
        return total;
    }

    /// <summary>The upper bounds on costs known before training (MACs, parameters, bytes; energy and latency from a profile),
    /// resolved against the baseline: the budget that allocation samplers spend.</summary>
    public IReadOnlyList<(ObjectiveKind Objective, double Limit)> CostBounds { get; }

    /// <summary>
    /// How much of the budget a configuration spends: the largest ratio of a predicted cost to its upper bound (1 = on the
    /// bound, above 1 = over it), so with several bounds the binding one counts. 0 without <see cref="CostBounds"/>.
    /// </summary>
    public double BoundedResource(IReadOnlyList<int> kept)
    {
        if (CostBounds.Count == 0) return 0;
        var values = Predict(kept);
        return CostBounds.Max(b => values.TryGetValue(b.Objective, out double v) ? v / b.Limit : 0);
    }

    /// <summary>The constraints that need an evaluated candidate (measured latency, say), by stage.</summary>
    public IReadOnlyList<Constraint> ObservedConstraints(SearchStage stage) =>
        (stage == SearchStage.Screening ? ScreeningConstraints : Constraints).Where(c => !Predicted.Contains(c.Objective)).ToArray();

    public ConstraintSet ConstraintsAt(SearchStage stage) => stage == SearchStage.Screening ? ScreeningConstraints : Constraints;

    public double[] ReferenceAt(SearchStage stage) => stage == SearchStage.Screening ? ScreeningReference : FinalReference;
}
