namespace ParetoPrune.Objectives.Pareto;

/// <summary>
/// Maps objective values to the canonical space of the Pareto code: one coordinate per objective, every one minimised
/// (maximised objectives are negated). With a baseline, each coordinate is also divided by the baseline's value, so
/// the unpruned model sits at (−1, 1, 1, …) with accuracy first, 0.4 reads "40 % of the baseline's MACs", and
/// objectives of wildly different magnitudes (10⁹ MACs, 0.9 accuracy) weigh alike in crowding distances and
/// scalarisations. Dividing an axis by a constant scales every hypervolume by the same constant: rankings do not change.
/// </summary>
public sealed class ObjectiveSpace
{
    readonly ObjectiveKind[] objectives;
    readonly double[] sign, divisor; // coordinate = sign × value / divisor: sign −1 for maximised, divisor 1 or the baseline

    /// <param name="baseline">When given, normalise by its values (each must be positive).</param>
    public ObjectiveSpace(IReadOnlyList<ObjectiveKind> objectives, IReadOnlyDictionary<ObjectiveKind, double>? baseline = null)
    {
        if (objectives.Count == 0) throw new ArgumentException("at least one objective", nameof(objectives));
        if (objectives.Distinct().Count() != objectives.Count) throw new ArgumentException("an objective appears twice", nameof(objectives));
        this.objectives = [.. objectives];
        sign = new double[objectives.Count];
        divisor = new double[objectives.Count];
        for (int i = 0; i < objectives.Count; i++)
        {
            sign[i] = objectives[i].IsMaximised() ? -1 : 1;
            divisor[i] = 1;
            if (baseline is null) continue;
            if (!baseline.TryGetValue(objectives[i], out double b))
                throw new ArgumentException($"the baseline has no {objectives[i].Name()} to normalise by", nameof(baseline));
            if (!(b > 0) || double.IsInfinity(b))
                throw new ArgumentException($"the baseline's {objectives[i].Name()} is {b}: normalising needs a positive value", nameof(baseline));
            divisor[i] = b;
        }
        IsNormalised = baseline is not null;
    }

    public IReadOnlyList<ObjectiveKind> Objectives => objectives;
    public int Dimensions => objectives.Length;
    public bool IsNormalised { get; }

    /// <exception cref="ArgumentException">An objective of the space has no value.</exception>
    public double[] ToPoint(IReadOnlyDictionary<ObjectiveKind, double> values)
    {
        var point = new double[objectives.Length];
        for (int i = 0; i < point.Length; i++)
            point[i] = values.TryGetValue(objectives[i], out double v)
                ? sign[i] * v / divisor[i]
                : throw new ArgumentException($"no {objectives[i].Name()} value", nameof(values));
        return point;
    }

    public double[] ToPoint(IEnumerable<ObjectiveValue> values) => ToPoint(ObjectiveValue.ToDictionary(values));

    /// <exception cref="ArgumentException">The reference point lacks an objective of the space.</exception>
    public double[] ToPoint(ReferencePoint reference)
    {
        var values = new Dictionary<ObjectiveKind, double>();
        for (int i = 0; i < reference.Objectives.Count; i++) values[reference.Objectives[i]] = reference.Values[i];
        return ToPoint(values);
    }

    /// <summary>Back from the canonical space to the objectives' own units and directions.</summary>
    public IReadOnlyDictionary<ObjectiveKind, double> FromPoint(ReadOnlySpan<double> point)
    {
        if (point.Length != objectives.Length)
            throw new ArgumentException($"a point of this space has {objectives.Length} coordinates, not {point.Length}", nameof(point));
        var values = new Dictionary<ObjectiveKind, double>();
        for (int i = 0; i < point.Length; i++) values[objectives[i]] = sign[i] * point[i] * divisor[i];
        return values;
    }
}
