using ParetoPrune.Devices;
using ParetoPrune.Objectives;

namespace ParetoPrune.Optimizer.Search;

/// <summary>
/// Latency and energy of a deployed model from <see cref="DeviceTargets"/>: measured where a device measures them,
/// else estimated by the profile (when it can), each value labelled with where it came from.
/// </summary>
static class DeviceFigures
{
    /// <summary>Latency (ms) and energy (mJ per inference) of <paramref name="deployed"/>, as far as the targets give them.</summary>
    /// <param name="counts">The deployed model's counts, for a profile's estimate.</param>
    /// <exception cref="DeviceMeasurementException">The energy device gave no energy.</exception>
    public static async Task<List<ObjectiveValue>> ObserveAsync(DeviceTargets devices, byte[] deployed, int[] inputShape, ModelCounts counts,
                                                                 MeasurementPlan plan, bool latency, bool energy, string fidelity, CancellationToken ct,
                                                                 List<ObjectiveValue>? boards = null)
    {
        var values = devices.Profile is { } profile
            ? Estimated(profile, counts, latency && devices.LatencyDevice is null, energy && devices.EnergyDevice is null, fidelity)
            : [];
        Measurement? latencyMeasurement = null;
        if (latency && devices.LatencyDevice is { } latencyDevice)
        {
            latencyMeasurement = await latencyDevice.MeasureAsync(deployed, inputShape, plan, ct);
            values.Add(new(ObjectiveKind.Latency, latencyMeasurement.Latency.MedianMs, ToProvenance(latencyMeasurement.Provenance), fidelity));
            boards?.AddRange(latencyMeasurement.Boards?.Select(m => new ObjectiveValue(ObjectiveKind.Latency, m.Latency.MedianMs, ToProvenance(m.Provenance), fidelity)) ?? []);
        }
        if (energy && devices.EnergyDevice is { } energyDevice)
        {
            var measurement = ReferenceEquals(energyDevice, devices.LatencyDevice) && latencyMeasurement is not null
                ? latencyMeasurement
                : await energyDevice.MeasureAsync(deployed, inputShape, plan, ct);
            if (measurement.Energy is not { } e)
                throw new DeviceMeasurementException($"{energyDevice.Name} gave no energy: {measurement.EnergyUnavailableReason}");
            values.Add(new(ObjectiveKind.Energy, e.JoulesPerInference * 1000, ToProvenance(measurement.Provenance), fidelity));
            boards?.AddRange(measurement.Boards?.Where(m => m.Energy is not null)
                .Select(m => new ObjectiveValue(ObjectiveKind.Energy, m.Energy!.JoulesPerInference * 1000, ToProvenance(m.Provenance), fidelity)) ?? []);
        }
        return values;
    }

    /// <summary>Latency (ms) and energy (mJ per inference) as <paramref name="profile"/> estimates them from the model's counts,
    /// labelled as estimates, each with its 90 % interval where the profile knows its error.</summary>
    public static List<ObjectiveValue> Estimated(DeviceProfile profile, ModelCounts counts, bool latency, bool energy, string fidelity)
    {
        var values = new List<ObjectiveValue>();
        double ms = profile.EstimateLatencyMs(counts);
        // The interval as a factor, in the provenance every report prints, and as bounds on each value.
        static Provenance Estimate(DeviceProfile profile, double? factor) =>
            Provenance.Estimated(profile.Name, profile.Device, uncertainty: factor is { } f ? $"90 % interval ×/÷ {f:0.00}" : null);
        static ValueInterval? Interval((double Low, double High)? range) => range is { } r ? new(r.Low, r.High) : null;
        if (latency)
            values.Add(new(ObjectiveKind.Latency, ms, Estimate(profile, profile.LatencyErrorFactor), fidelity) { Interval = Interval(profile.LatencyInterval(ms)) });
        if (energy && profile.ActiveWatts is { } watts) // ms × W = mJ
            values.Add(new(ObjectiveKind.Energy, ms * watts, Estimate(profile, profile.EnergyErrorFactor), fidelity) { Interval = Interval(profile.EnergyInterval(ms * watts)) });
        return values;
    }

    public static Provenance ToProvenance(DeviceProvenance device) => device.Kind == DeviceProvenanceKind.Measured
        ? Provenance.Measured(device.Device, device.Meter, device.RuntimeDescription)
        : Provenance.Estimated(device.Profile ?? device.Device, device.Device, device.RuntimeDescription);
}
