using Microsoft.ML.OnnxRuntime;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Quantization;

/// <summary>
/// The range of each activation over calibration images: the float model runs in ONNX Runtime with those activations
/// made graph outputs. Min/max takes one pass; a percentile takes a second, filling a histogram of each tensor between
/// the extremes of the first (values are streamed, never stored).
/// </summary>
internal static class ActivationCalibration
{
    const int Bins = 2048;

    public static Dictionary<string, (float Min, float Max)> Ranges(ModelProto model, string inputName, IReadOnlyList<string> tensors, Dataset images,
                                                                    QuantizationOptions options)
    {
        if (tensors.Count == 0) return new(StringComparer.Ordinal);
        var probe = model.Clone();
        var outputs = probe.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (string tensor in tensors.Where(t => !outputs.Contains(t)))
        {
            var info = new ValueInfoProto { Name = tensor, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } };
            probe.Graph.Output.Add(info);
        }
        using var sessionOptions = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC };
        using var session = new InferenceSession(OnnxModel.ToBytes(probe), sessionOptions);
        int batchSize = FixedBatch(session, inputName) ?? options.BatchSize;

        var min = tensors.ToDictionary(t => t, _ => float.PositiveInfinity, StringComparer.Ordinal);
        var max = tensors.ToDictionary(t => t, _ => float.NegativeInfinity, StringComparer.Ordinal);
        Run(session, inputName, tensors, images, batchSize, (tensor, values) =>
        {
            float lo = min[tensor], hi = max[tensor];
            foreach (float v in values)
            {
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            (min[tensor], max[tensor]) = (lo, hi);
        });
        if (float.IsInfinity(min[tensors[0]]))
            throw new ArgumentException($"no calibration batch ran: the model takes batches of exactly {batchSize} images and only {images.Count} were given; " +
                                        $"calibrate on at least {batchSize}");
        if (options.Calibration == CalibrationMethod.MinMax) return tensors.ToDictionary(t => t, t => (min[t], max[t]), StringComparer.Ordinal);

        var histograms = tensors.ToDictionary(t => t, _ => new long[Bins], StringComparer.Ordinal);
        Run(session, inputName, tensors, images, batchSize, (tensor, values) =>
        {
            var histogram = histograms[tensor];
            float lo = min[tensor], width = (max[tensor] - lo) / Bins;
            if (width <= 0) return;
            foreach (float v in values) histogram[Math.Clamp((int)((v - lo) / width), 0, Bins - 1)]++;
        });
        double tail = (100 - options.Percentile) / 100;
        return tensors.ToDictionary(t => t, t => Clip(histograms[t], min[t], max[t], tail), StringComparer.Ordinal);
    }

    /// <summary>The range that leaves out <paramref name="tail"/> of the values at each end (bin edges, outward).</summary>
    static (float Min, float Max) Clip(long[] histogram, float min, float max, double tail)
    {
        long total = histogram.Sum();
        if (total == 0 || max <= min) return (min, max);
        double width = (max - min) / (double)Bins;
        long allowed = (long)Math.Floor(tail * total);
        int low = 0, high = Bins - 1;
        for (long below = 0; low < Bins - 1 && below + histogram[low] <= allowed; low++) below += histogram[low];
        for (long above = 0; high > 0 && above + histogram[high] <= allowed; high--) above += histogram[high];
        return ((float)(min + low * width), (float)(min + (high + 1) * width));
    }

    static int? FixedBatch(InferenceSession session, string inputName) =>
        session.InputMetadata[inputName].Dimensions is [> 0 and var batch, ..] ? batch : null;

    static void Run(InferenceSession session, string inputName, IReadOnlyList<string> tensors, Dataset images, int batchSize, Action<string, ReadOnlySpan<float>> observe)
    {
        long[] imageShape = [images.Channels, images.Height, images.Width];
        using var runOptions = new RunOptions();
        for (int start = 0; start < images.Count; start += batchSize)
        {
            int count = Math.Min(batchSize, images.Count - start);
            if (session.InputMetadata[inputName].Dimensions[0] > 0 && count < batchSize) break; // a fixed batch: drop the remainder
            var pixels = images.Pixels.AsSpan(start * images.ImageSize, count * images.ImageSize).ToArray();
            using var input = OrtValue.CreateTensorValueFromMemory(pixels, [count, .. imageShape]);
            using var results = session.Run(runOptions, [inputName], [input], tensors.ToArray());
            for (int i = 0; i < tensors.Count; i++) observe(tensors[i], results[i].GetTensorDataAsSpan<float>());
        }
    }
}
