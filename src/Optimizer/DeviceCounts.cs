using ParetoPrune.Devices;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer;

/// <summary>The counts a device profile estimates from (<see cref="DeviceProfile.EstimateLatencyMs"/>), taken from a model's graph.</summary>
public static class DeviceCounts
{
    /// <summary>MACs, float32 weight bytes (4 per parameter) and operators of <paramref name="model"/>, whose cost is <paramref name="cost"/>.</summary>
    public static ModelCounts Of(ModelProto model, ModelCost cost) => new(cost.Macs, cost.Params * 4, model.Graph.Node.Count);
}
