using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Optimizer.Quantization;

/// <summary>
/// What a deployable model (float or INT8) gives its user, each figure with its provenance: accuracy through ML.NET's
/// ApplyOnnxModel, the file's size (and gzip size), latency and energy on the target devices.
/// </summary>
public sealed record DeployedFigures(ObjectiveValue? Accuracy, long Bytes, long CompressedBytes, IReadOnlyList<ObjectiveValue> Device)
{
    /// <summary>Scores <paramref name="deployed"/> on <paramref name="data"/> (the split named <paramref name="split"/>; none
    /// when null) and measures it on <paramref name="devices"/>.</summary>
    public static async Task<DeployedFigures> ObserveAsync(MLContext mlContext, ModelProto deployed, Dataset? data, string split, string fidelity,
                                                           DeviceTargets devices, MeasurementPlan plan, CancellationToken ct = default)
    {
        byte[] bytes = OnnxModel.ToBytes(deployed);
        var seconds = new Dictionary<string, double>();
        string scratch = Directory.CreateTempSubdirectory("paretoprune-deployed-").FullName;
        try
        {
            var accuracy = data is null ? null : CandidatePipeline.ScoreBytes(mlContext, bytes, scratch, data, split, fidelity, seconds);
            var device = await CandidatePipeline.MeasureAsync(devices, deployed, bytes, plan, latency: true, energy: true, seconds, ct);
            return new DeployedFigures(accuracy, bytes.Length, ModelSize.Compressed(bytes), device);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }
}
