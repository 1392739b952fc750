namespace ParetoPrune.Devices;

/// <summary>
/// Predicts latency and energy from a <see cref="DeviceProfile"/> instead of running the model: for search on a
/// machine without the target board. Its results say "estimated by profile …" and are never measurements.
/// </summary>
/// <param name="countModel">Counts MACs, weight bytes and layers of a model for a full input shape (batch first).
/// Devices cannot read ONNX graphs itself (that is ParetoPrune.Objectives' ModelCost); the caller wires it.</param>
public sealed class EstimatedDevice(DeviceProfile profile, Func<byte[], int[], ModelCounts> countModel) : IDevice
{
    readonly DeviceProfile profile = (profile ?? throw new ArgumentNullException(nameof(profile))).Validated("device profile");
    readonly Func<byte[], int[], ModelCounts> countModel = countModel ?? throw new ArgumentNullException(nameof(countModel));

    /// <summary>The profile's device, marked as estimated so that a bare name cannot pass for a measured device.</summary>
    public string Name => $"{profile.Device} (estimated)";

    public DeviceProfile Profile => profile;

    public Task<Measurement> MeasureAsync(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(onnxModel);
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(plan);
        plan.Validate();
        ct.ThrowIfCancellationRequested();
        int[] shape = [plan.BatchSize, .. inputShape];
        ModelCounts counts = countModel(onnxModel, shape)
            ?? throw new InvalidOperationException("the model counter returned no counts");
        double ms = profile.EstimateLatencyMs(counts);
        if (ms <= 0) throw new InvalidOperationException($"profile {profile.Name} predicts {ms} ms for {counts}; a run takes time");

        // One predicted value, no spread: Runs = 0 says no run was timed.
        var latency = LatencyDistribution.Predicted(ms);
        double secondsPerInference = ms / 1000 / plan.BatchSize;
        EnergyFigures? energy = profile.ActiveWatts is { } active
            ? new EnergyFigures(secondsPerInference * active, secondsPerInference * (active - profile.IdleWatts),
                active, profile.IdleWatts, PowerSamples: null, Window: null, Inferences: null)
            : null;
        string? reason = energy is null ? $"profile {profile.Name} has no active power figure" : null;
        return Task.FromResult(new Measurement(latency, 1 / secondsPerInference, energy, reason,
            DeviceProvenance.Estimated(profile.Name, profile.Device)));
    }
}
