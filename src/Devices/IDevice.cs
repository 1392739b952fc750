namespace ParetoPrune.Devices;

/// <summary>Something that can tell how fast, and how costly in energy, an ONNX model runs on a device.</summary>
public interface IDevice
{
    /// <summary>The device, as reports name it ("Raspberry Pi 4B", a host name).</summary>
    string Name { get; }

    /// <summary>
    /// Latency and, where the device can tell, energy of <paramref name="onnxModel"/> for a float input of shape
    /// [<see cref="MeasurementPlan.BatchSize"/>, ..<paramref name="inputShape"/>]: <paramref name="inputShape"/> is one
    /// sample's shape, without the batch dimension (e.g. [3, 32, 32]). The result's provenance says whether it was
    /// measured or estimated.
    /// </summary>
    Task<Measurement> MeasureAsync(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct = default);
}
