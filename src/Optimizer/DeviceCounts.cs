using ParetoPrune.Devices;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer;

/// <summary>The counts a device profile estimates from (<see cref="DeviceProfile.EstimateLatencyMs"/>), taken from a model's graph.</summary>
public static class DeviceCounts
{
    /// <summary>
    /// MACs (and of them, those on INT8 kernels), weight bytes as stored (4 per float parameter, 1 per INT8 weight) and
    /// operators of <paramref name="model"/>, whose cost is <paramref name="cost"/>. QuantizeLinear and DequantizeLinear
    /// are not counted as operators: runtimes fuse them into the integer kernels, or apply them once to the weights.
    /// </summary>
    public static ModelCounts Of(ModelProto model, ModelCost cost) =>
        new(cost.Macs, cost.ParamBytes, model.Graph.Node.Count(n => n.OpType is not ("QuantizeLinear" or "DequantizeLinear")) + FoldedActivations(model), cost.Int8Macs);

    /// <summary>Activation functions a quantizer folded into its layers' quantization: counted as the float model counts them,
    /// so that INT8 saves only what integer kernels save.</summary>
    static int FoldedActivations(ModelProto model) =>
        OnnxModel.GetMetadata(model, Quantization.Int8Quantizer.FoldedActivationsKey) is { } text
        && int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int folded) ? folded : 0;
}
