namespace ParetoPrune.Objectives;

/// <summary>
/// One objective's value for one candidate, in the objective's unit (<see cref="ObjectiveInfo.Unit"/>: accuracy as a
/// fraction, latency in ms, energy in mJ per inference, sizes in bytes), with how it was obtained and at which fidelity.
/// </summary>
/// <param name="Fidelity">How much work went into the candidate before it was evaluated: free text, usually one of
/// <see cref="Fidelities"/>. Values of different fidelities are not comparable.</param>
public sealed record ObjectiveValue(ObjectiveKind Kind, double Value, Provenance Provenance, string Fidelity)
{
    public ObjectiveKind Kind { get; init; } = Enum.IsDefined(Kind) ? Kind : throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "not an objective");
    public double Value { get; init; } = double.IsFinite(Value) ? Value : throw new ArgumentException($"a {Kind.Name()} value must be a finite number, not {Value}", nameof(Value));
    public Provenance Provenance { get; init; } = Provenance ?? throw new ArgumentNullException(nameof(Provenance));
    public string Fidelity { get; init; } = string.IsNullOrWhiteSpace(Fidelity) ? throw new ArgumentException("a fidelity is required", nameof(Fidelity)) : Fidelity;

    /// <summary>For an estimate: the 90 % interval the true value is expected in (from the profile's fit errors); null
    /// where it is unknown, and for measured, computed and scored values.</summary>
    public ValueInterval? Interval { get; init; }

    public override string ToString() => $"{Kind.Name()} = {Kind.Format(Value)}{(Interval is { } i ? $" (90 % interval {Kind.Format(i.Low)}–{Kind.Format(i.High)})" : "")} ({Provenance}; {Fidelity})";

    /// <summary>The values by objective, for <see cref="ConstraintSet"/> and the Pareto helpers.</summary>
    /// <exception cref="ArgumentException">An objective appears twice.</exception>
    public static IReadOnlyDictionary<ObjectiveKind, double> ToDictionary(IEnumerable<ObjectiveValue> values)
    {
        var result = new Dictionary<ObjectiveKind, double>();
        foreach (var v in values)
            if (!result.TryAdd(v.Kind, v.Value))
                throw new ArgumentException($"{v.Kind.Name()} is given twice", nameof(values));
        return result;
    }
}

/// <summary>A range of values, low to high, in the objective's unit.</summary>
public sealed record ValueInterval(double Low, double High);

/// <summary>Well-known fidelities. A fidelity is free text; use these where they fit so runs group and compare.</summary>
public static class Fidelities
{
    /// <summary>Counted on the graph: exact whatever the training.</summary>
    public const string Computed = "computed";
    /// <summary>Pruned and evaluated without any retraining.</summary>
    public const string NoRetraining = "no retraining";
    /// <summary>BatchNorm statistics recomputed on training batches, no weight update (EagleEye).</summary>
    public const string BnRecalibrated = "bn-recalibrated";
    public const string FullyRetrained = "fully retrained";

    public static string FineTuned(int epochs) => epochs switch
    {
        < 1 => throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "at least one epoch"),
        1 => "fine-tuned 1 epoch",
        _ => $"fine-tuned {epochs} epochs",
    };
}
