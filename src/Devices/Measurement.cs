using System.Text.Json.Serialization;

namespace ParetoPrune.Devices;

/// <summary>
/// Latency and energy of one model on one device, with how they were obtained.
/// Latency is per run (one batch of <see cref="MeasurementPlan.BatchSize"/> samples); throughput and energy are per
/// inference, i.e. per input sample.
/// </summary>
/// <param name="Energy">Null when energy could not be obtained; <paramref name="EnergyUnavailableReason"/> then says why.</param>
public sealed record Measurement(
    LatencyDistribution Latency,
    double InferencesPerSecond,
    EnergyFigures? Energy,
    string? EnergyUnavailableReason,
    DeviceProvenance Provenance)
{
    // A missing energy figure must say why, and a present one cannot carry a reason: never a silent zero.
    public EnergyFigures? Energy { get; init; } = (Energy is null) == string.IsNullOrWhiteSpace(EnergyUnavailableReason)
        ? throw new ArgumentException("a measurement has either energy figures or a reason why energy is unavailable, not both or neither")
        : Energy;

    /// <summary>Each board's own measurement, where a <see cref="DeviceFleet"/> measured on every board; null otherwise.</summary>
    public IReadOnlyList<Measurement>? Boards { get; init; }
}

/// <summary>
/// Latency of timed runs in milliseconds. Percentiles interpolate linearly between order statistics (Hyndman–Fan
/// type 7, numpy's default); the median's 95 % confidence interval is distribution-free (see <see cref="LatencyStatistics"/>).
/// An estimate has <see cref="Runs"/> = 0, <see cref="MedianMs"/> the predicted value and no other statistic (null):
/// there is no distribution to describe.
/// </summary>
public sealed record LatencyDistribution(
    double MedianMs, double? P10Ms, double? P90Ms, double? MeanMs, double? StdMs, double? MinMs, double? MaxMs,
    double? MedianCiLowerMs, double? MedianCiUpperMs, int Runs)
{
    /// <summary>Width of the median's confidence interval relative to the median (infinite for an estimate; derived, so not serialised).</summary>
    [JsonIgnore]
    public double RelativeCiWidth => MedianMs > 0 && MedianCiUpperMs is { } upper && MedianCiLowerMs is { } lower ? (upper - lower) / MedianMs : double.PositiveInfinity;

    /// <summary>A predicted latency: the value, without statistics.</summary>
    public static LatencyDistribution Predicted(double ms) => new(ms, null, null, null, null, null, null, null, null, Runs: 0);
}

/// <summary>Energy figures. Joules and watts are for the whole device (board or package) the meter sees.</summary>
/// <param name="JoulesPerInference">All energy in the window divided by the inferences in it.</param>
/// <param name="DynamicJoulesPerInference">Energy above idle, (E − P_idle·T)/N; null when idle power was not measured.
/// Measured, it can come out slightly negative when the model's load is within the meter's noise.</param>
/// <param name="AverageWatts">Mean power over the window.</param>
/// <param name="IdleWatts">Idle power (mean of the windows before and after); null when not measured.</param>
/// <param name="PowerSamples">Meter samples inside the window (0 for a counter read at both ends); null for an estimate.</param>
/// <param name="Window">Length of the window; null for an estimate.</param>
/// <param name="Inferences">Inferences inside the window; null for an estimate.</param>
public sealed record EnergyFigures(
    double JoulesPerInference,
    double? DynamicJoulesPerInference,
    double AverageWatts,
    double? IdleWatts,
    int? PowerSamples,
    TimeSpan? Window,
    long? Inferences);

[JsonConverter(typeof(JsonStringEnumConverter<DeviceProvenanceKind>))]
public enum DeviceProvenanceKind
{
    /// <summary>Read on a real device with a clock, and a meter when one is named.</summary>
    Measured,
    /// <summary>Predicted from a device profile: a model of the device, not the device.</summary>
    Estimated,
}

/// <summary>
/// How a <see cref="Measurement"/> was obtained, in the vocabulary of ParetoPrune.Objectives' Provenance
/// (device, meter, runtime, profile), which Devices cannot reference. Build one with <see cref="Measured"/> or
/// <see cref="Estimated"/>; <see cref="Description"/> is the sentence a report shows. Serialises to JSON (the
/// device agent sends measurements over HTTP).
/// </summary>
public sealed record DeviceProvenance
{
    [JsonConstructor]
    DeviceProvenance(DeviceProvenanceKind kind, string device, string? platform, string? runtime, int? threads,
        string? graphOptimization, string? meter, string? profile)
    {
        if (string.IsNullOrWhiteSpace(device)) throw new ArgumentException("provenance needs the device's name");
        (Kind, Device, Platform, Runtime, Threads, GraphOptimization, Meter, Profile) =
            (kind, device.Trim(), Clean(platform), Clean(runtime), threads, Clean(graphOptimization), Clean(meter), Clean(profile));
    }

    public DeviceProvenanceKind Kind { get; }
    /// <summary>Measured: the device measured on; Estimated: the device the profile describes.</summary>
    public string Device { get; }
    /// <summary>Measured: operating system and CPU ("Ubuntu 24.04, x64, AMD EPYC 7763, 16 logical cores").</summary>
    public string? Platform { get; }
    /// <summary>Measured: the inference runtime and its version ("ONNX Runtime 1.31.1").</summary>
    public string? Runtime { get; }
    /// <summary>Measured: intra-op threads asked for; null for the runtime's default.</summary>
    public int? Threads { get; }
    /// <summary>Measured: graph optimisation level ("all", "extended", "basic", "disabled").</summary>
    public string? GraphOptimization { get; }
    /// <summary>Measured: the energy meter; null for a clock-only measurement.</summary>
    public string? Meter { get; }
    /// <summary>Estimated: the profile's name.</summary>
    public string? Profile { get; }

    [JsonIgnore] public bool IsMeasurement => Kind == DeviceProvenanceKind.Measured;

    /// <summary>Runtime with its settings, e.g. "ONNX Runtime 1.31.1, 4 threads, graph optimisation all".</summary>
    public string? RuntimeDescription => Runtime is null ? null
        : $"{Runtime}, {(Threads is { } t ? $"{t} thread{(t == 1 ? "" : "s")}" : "default threads")}"
          + (GraphOptimization is null ? "" : $", graph optimisation {GraphOptimization}");

    public string Description => ToString();

    public static DeviceProvenance Measured(string device, string platform, string runtime, int? threads, string graphOptimization, string? meter) =>
        new(DeviceProvenanceKind.Measured, device, platform, runtime, threads, graphOptimization, meter, null);

    public static DeviceProvenance Estimated(string profile, string device)
    {
        if (string.IsNullOrWhiteSpace(profile)) throw new ArgumentException("an estimate needs the profile it came from");
        return new(DeviceProvenanceKind.Estimated, device, null, null, null, null, null, profile);
    }

    public override string ToString() => Kind == DeviceProvenanceKind.Measured
        ? $"measured on {Device} ({Platform}) with {(Meter is null ? "no energy meter" : Meter)}, {RuntimeDescription}"
        : $"estimated by profile {Profile} ({Device}; a rough model of the device, not a measurement)";

    /// <summary>The same provenance, naming the device more exactly (a board of a fleet, with its address).</summary>
    public DeviceProvenance OnDevice(string device) => new(Kind, device, Platform, Runtime, Threads, GraphOptimization, Meter, Profile);

    static string? Clean(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}
