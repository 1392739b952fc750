using System.Text.Json.Serialization;

namespace ParetoPrune.Objectives;

[JsonConverter(typeof(JsonStringEnumConverter<ProvenanceKind>))]
public enum ProvenanceKind
{
    /// <summary>Counted on the model itself (MACs, parameters, bytes): exact for the graph, no device involved.</summary>
    Computed,
    /// <summary>Read on a real device, with a meter or a clock.</summary>
    Measured,
    /// <summary>Predicted from a device profile: a model of the device, not the device.</summary>
    Estimated,
    /// <summary>Evaluated on data (accuracy).</summary>
    Scored,
}

/// <summary>
/// How a value was obtained, so that a report can say it and an estimate never reads as a measurement.
/// Build one with <see cref="Computed"/>, <see cref="Measured"/>, <see cref="Estimated"/> or <see cref="Scored"/>;
/// the fields a kind does not use stay null. Serialises to JSON as its fields plus a readable <see cref="Description"/>.
/// </summary>
public sealed record Provenance
{
    [JsonConstructor]
    public Provenance(ProvenanceKind kind, string? device = null, string? meter = null, string? runtime = null,
        string? profile = null, string? dataset = null, string? split = null, string? uncertainty = null)
    {
        static string? Clean(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
        (Kind, Device, Meter, Runtime, Profile, Dataset, Split, Uncertainty) =
            (kind, Clean(device), Clean(meter), Clean(runtime), Clean(profile), Clean(dataset), Clean(split), Clean(uncertainty));
        string? missing = kind switch
        {
            ProvenanceKind.Measured when Device is null => "a measured value needs the device it was measured on",
            ProvenanceKind.Estimated when Profile is null => "an estimated value needs the profile it was estimated from",
            ProvenanceKind.Scored when Dataset is null => "a scored value needs the data set it was scored on",
            ProvenanceKind.Computed or ProvenanceKind.Measured or ProvenanceKind.Estimated or ProvenanceKind.Scored => null,
            _ => $"unknown provenance kind {kind}",
        };
        if (missing is not null) throw new ArgumentException(missing);
        // A field of another kind would make the description lie (a profile on a measurement reads as both).
        bool stray = kind switch
        {
            ProvenanceKind.Computed => (Device ?? Meter ?? Runtime ?? Profile ?? Dataset ?? Split ?? Uncertainty) is not null,
            ProvenanceKind.Measured => (Profile ?? Dataset ?? Split ?? Uncertainty) is not null,
            ProvenanceKind.Estimated => (Meter ?? Dataset ?? Split) is not null,
            _ => (Device ?? Meter ?? Runtime ?? Profile ?? Uncertainty) is not null,
        };
        if (stray) throw new ArgumentException($"a {kind.ToString().ToLowerInvariant()} provenance cannot carry fields of another kind");
    }

    public ProvenanceKind Kind { get; }
    /// <summary>Measured: the device ("Raspberry Pi 4B"); Estimated: optionally the device the profile describes.</summary>
    public string? Device { get; }
    /// <summary>Measured: the energy meter ("INA260", "UM25C"); null for a clock-only measurement.</summary>
    public string? Meter { get; }
    /// <summary>Measured or Estimated: the inference runtime ("ONNX Runtime 1.31, 4 threads").</summary>
    public string? Runtime { get; }
    /// <summary>Estimated: the name of the device profile.</summary>
    public string? Profile { get; }
    /// <summary>Scored: the data set ("Fashion-MNIST sample, 2,000 images").</summary>
    public string? Dataset { get; }
    /// <summary>Scored: the split ("validation").</summary>
    public string? Split { get; }
    /// <summary>Estimated: how far off the estimate may be ("90 % interval ×/÷ 1.84"), from the profile's fit; null when unknown.</summary>
    public string? Uncertainty { get; }

    /// <summary>A few words for an axis or a column heading: "Raspberry Pi 4B, estimated", "Raspberry Pi 4B, measured (INA260)",
    /// "counted", "validation split"; <see cref="Description"/> says the rest.</summary>
    [JsonIgnore]
    public string Short => Kind switch
    {
        ProvenanceKind.Computed => "counted",
        ProvenanceKind.Measured => $"{Device}, measured" + (Meter is null ? "" : $" ({Meter})"),
        ProvenanceKind.Estimated => $"{Device ?? Profile}, estimated",
        _ => Split is null ? Dataset ?? "scored" : $"{Split} split",
    };

    /// <summary>The readable form, also written to JSON.</summary>
    public string Description => ToString();

    [JsonIgnore] public bool IsMeasurement => Kind == ProvenanceKind.Measured;

    public static Provenance Computed { get; } = new(ProvenanceKind.Computed);

    public static Provenance Measured(string device, string? meter, string? runtime) =>
        new(ProvenanceKind.Measured, device: device, meter: meter, runtime: runtime);

    public static Provenance Estimated(string profile, string? device = null, string? runtime = null, string? uncertainty = null) =>
        new(ProvenanceKind.Estimated, device: device, runtime: runtime, profile: profile, uncertainty: uncertainty);

    public static Provenance Scored(string dataset, string? split) => new(ProvenanceKind.Scored, dataset: dataset, split: split);

    public override string ToString() => Kind switch
    {
        ProvenanceKind.Computed => "computed from the ONNX graph",
        ProvenanceKind.Measured => $"measured on {Device}" + (Meter is null ? "" : $" with {Meter}")
                                   + (Runtime is null ? "" : $", {Runtime}"),
        ProvenanceKind.Estimated => $"estimated, not measured: profile '{Profile}'" + (Device is null ? "" : $" of {Device}")
                                    + (Runtime is null ? "" : $", {Runtime}") + (Uncertainty is null ? "" : $" ({Uncertainty})"),
        _ => (Split is null ? "scored on " : $"scored on the {Split} split of ") + Dataset,
    };
}
