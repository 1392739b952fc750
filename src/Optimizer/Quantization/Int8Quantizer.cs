using System.Globalization;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Quantization;

/// <summary>How activation ranges are taken from the calibration images.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value seen: nothing clips, but one outlier widens every step.</summary>
    MinMax,

    /// <summary>The <see cref="QuantizationOptions.Percentile"/>-th percentile at each end: rare outliers clip, the rest gets finer steps.</summary>
    Percentile,
}

/// <summary>Settings of <see cref="Int8Quantizer"/>.</summary>
public sealed record QuantizationOptions
{
    public CalibrationMethod Calibration { get; init; } = CalibrationMethod.MinMax;

    /// <summary>With <see cref="CalibrationMethod.Percentile"/>: the share of values (in %) each range keeps.</summary>
    public double Percentile { get; init; } = 99.99;

    /// <summary>Training images the activation ranges are calibrated on (a random, seeded subset).</summary>
    public int CalibrationImages { get; init; } = 256;

    /// <summary>Images per calibration run of ONNX Runtime.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Keeps the first and the last weighted layer (Conv, Gemm, MatMul) in float: they see raw pixels and
    /// produce the logits, and are where INT8 loses most accuracy for least gain.</summary>
    public bool KeepFirstAndLastFloat { get; init; }

    public int Seed { get; init; }

    /// <summary>The settings in words, for provenance.</summary>
    public string Describe(int images) =>
        $"INT8 QDQ: per-channel symmetric INT8 weights, per-tensor UINT8 activations calibrated by " +
        (Calibration == CalibrationMethod.MinMax ? "min/max" : $"the {Percentile.ToString("0.####", CultureInfo.InvariantCulture)}th percentile") +
        $" on {images} training images{(KeepFirstAndLastFloat ? ", first and last layer float" : "")}";

    internal void Validate()
    {
        if (CalibrationImages < 1) throw new ArgumentException($"calibration needs at least one image, not {CalibrationImages}");
        if (BatchSize < 1) throw new ArgumentException($"the calibration batch size must be at least 1, not {BatchSize}");
        if (Calibration == CalibrationMethod.Percentile && Percentile is <= 50 or > 100)
            throw new ArgumentException($"the percentile must be above 50 and at most 100, not {Percentile}");
    }
}

/// <summary>What <see cref="Int8Quantizer"/> did.</summary>
/// <param name="QuantizedNodes">Weighted layers (Conv, Gemm, MatMul) whose weights are INT8, by name.</param>
/// <param name="FloatNodes">Weighted layers left in float, by name, with why.</param>
/// <param name="QuantizedTensors">Activations quantized (each a QuantizeLinear/DequantizeLinear pair).</param>
/// <param name="FoldedActivations">Relu and Clip(0, …) nodes removed: the quantization of their input saturates at zero instead.</param>
public sealed record QuantizationReport(IReadOnlyList<string> QuantizedNodes, IReadOnlyList<string> FloatNodes, int QuantizedTensors,
                                        int FoldedActivations, int CalibrationImages, string Description);

/// <summary>A quantized model and what was done to it.</summary>
public sealed record QuantizedModel(ModelProto Model, QuantizationReport Report);

/// <summary>
/// Static post-training INT8 quantisation of a float ONNX model in QDQ form: every weighted layer's weight is stored as
/// INT8 with one symmetric scale per output channel and read through DequantizeLinear; its bias as INT32 at the scale
/// of input × weight; every activation a weighted layer (or Add, or a pool after one) reads or writes gets a
/// QuantizeLinear → DequantizeLinear pair with one asymmetric 8-bit (UINT8) scale, calibrated on training images. The graph stays
/// a float graph with explicit rounding, so any ONNX runtime runs it; ONNX Runtime fuses each DQ → op → Q into its
/// integer kernels (QLinearConv, QGemm, QLinearAdd…) on x86 and ARM. A Relu (or ReLU6's Clip) right after a quantized
/// layer is folded into that layer's output quantization, whose range then starts at zero: values below saturate to
/// exactly 0, which is what the Relu did. BatchNormalization is folded first.
/// </summary>
public static class Int8Quantizer
{
    /// <summary>The model metadata entry that records how it was quantized.</summary>
    public const string MetadataKey = "paretoprune.quantization";

    /// <summary>The metadata entry with the number of activation functions folded away, which a device profile still counts
    /// as operators (the float model has them; on a device they fuse into the layer either way).</summary>
    public const string FoldedActivationsKey = "paretoprune.quantization.folded_activations";

    static readonly HashSet<string> Weighted = ["Conv", "Gemm", "MatMul"];
    static readonly HashSet<string> Pools = ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"];

    /// <summary>Refuses, naming why, a model this quantizer cannot take: one already quantized, below opset 13 (per-channel
    /// DequantizeLinear), or with other than one input. A search that quantizes checks its base model before it starts.</summary>
    /// <exception cref="OnnxModelException">Why the model cannot be quantized.</exception>
    public static void CheckQuantizable(ModelProto model)
    {
        if (OnnxModel.IsQuantized(model)) throw new OnnxModelException("the model is already quantized (it has QuantizeLinear/DequantizeLinear nodes)");
        long opset = OnnxModel.OpsetVersion(model);
        if (opset < 13)
            throw new OnnxModelException($"quantization needs opset 13 or later (per-channel DequantizeLinear); the model has opset {opset}");
        int inputs = new OnnxGraph(model).Inputs.Count;
        if (inputs != 1) throw new OnnxModelException($"quantization needs a model with one input; this one has {inputs}");
    }

    /// <exception cref="OnnxModelException">The model cannot be quantized (opset, input, already quantized), naming why.</exception>
    public static QuantizedModel Quantize(ModelProto model, Dataset calibration, QuantizationOptions? options = null)
    {
        options ??= new QuantizationOptions();
        options.Validate();
        CheckQuantizable(model);
        if (calibration.Count == 0) throw new ArgumentException("the calibration set has no images");

        var folded = ModelSurgery.FoldBatchNorm(model);
        var graph = new OnnxGraph(folded);
        if (graph.Inputs.Count != 1) throw new OnnxModelException($"quantization needs a model with one input; this one has {graph.Inputs.Count}");
        var shapes = ShapeInference.Infer(graph);
        bool IsFloatActivation(string t) => t.Length > 0 && !graph.IsConstant(t)
                                            && shapes.TryGetValue(t, out var info) && info.ElementType == (int)TensorProto.Types.DataType.Float;

        // Which weighted layers are quantized, and why the others are not.
        var weighted = graph.Nodes.Where(n => Weighted.Contains(n.OpType) && OnnxModel.IsDefaultDomain(n.Domain)).ToList();
        var floatNodes = new List<string>();
        var quantized = new List<NodeProto>();
        foreach (var node in weighted)
        {
            string? why = WhyNot(node, graph, IsFloatActivation);
            if (why is null && options.KeepFirstAndLastFloat && (node == weighted[0] || node == weighted[^1])) why = node == weighted[0] ? "first layer kept float" : "last layer kept float";
            if (why is null) quantized.Add(node);
            else floatNodes.Add($"{graph.NameOf(node)} ({why})");
        }
        var quantizedSet = quantized.ToHashSet();

        // Relu / Clip(0, max) after a quantized layer (or quantized Add) fold into its output's quantization.
        bool IsQuantizedAdd(NodeProto n) => n.OpType == "Add" && n.Input.Count == 2 && n.Input.All(IsFloatActivation)
                                            && n.Input.Any(i => graph.Producer(i) is { } p && quantizedSet.Contains(p));
        var adds = graph.Nodes.Where(IsQuantizedAdd).ToHashSet();
        var folds = new Dictionary<NodeProto, NodeProto>(); // producer → the activation folded into it
        foreach (var producer in quantized.Concat(adds))
        {
            string output = producer.Output[0];
            if (graph.IsGraphOutput(output) || graph.Consumers(output) is not [var activation]) continue;
            if (IsZeroFloorActivation(activation, graph) && !graph.IsGraphOutput(activation.Output[0])) folds[producer] = activation;
        }
        string OutputOf(NodeProto n) => folds.TryGetValue(n, out var a) ? a.Output[0] : n.Output[0];

        // The activations that get a Q/DQ pair (by their name in the float model: a folded layer's is its activation's).
        var tensors = new List<string>();
        var inputOf = new Dictionary<string, string>(StringComparer.Ordinal); // a pool's output → its input (a max pool shares its input's scale)
        void Add(string t)
        {
            if (IsFloatActivation(t) && !graph.IsGraphOutput(t) && !tensors.Contains(t)) tensors.Add(t);
        }
        foreach (var node in quantized)
        {
            foreach (string input in node.Input.Take(node.OpType == "MatMul" ? 2 : 1)) Add(input);
            Add(OutputOf(node));
        }
        foreach (var add in adds)
        {
            foreach (string input in add.Input) Add(input);
            Add(OutputOf(add));
        }
        foreach (var pool in graph.Nodes.Where(n => Pools.Contains(n.OpType) && tensors.Contains(n.Input[0]) && !graph.IsGraphOutput(n.Output[0])))
        {
            Add(pool.Output[0]);
            if (pool.OpType is "MaxPool" or "GlobalMaxPool") inputOf[pool.Output[0]] = pool.Input[0];
        }

        var sample = Sample(calibration, options.CalibrationImages, options.Seed);
        var ranges = ActivationCalibration.Ranges(folded, graph.Inputs[0].Name, tensors, sample, options);
        var parameters = tensors.ToDictionary(t => t, t => ActivationScale(inputOf.TryGetValue(t, out var source) ? ranges[source] : ranges[t]), StringComparer.Ordinal);

        var result = Rewrite(folded, graph, quantized, folds, tensors, parameters);
        string description = options.Describe(sample.Count);
        OnnxModel.SetMetadata(result, MetadataKey, description);
        OnnxModel.SetMetadata(result, FoldedActivationsKey, folds.Count.ToString(CultureInfo.InvariantCulture));
        var report = new QuantizationReport(quantized.Select(graph.NameOf).ToList(), floatNodes, tensors.Count, folds.Count, sample.Count, description);
        return new QuantizedModel(result, report);
    }

    /// <summary>Why a weighted layer stays float, or null when it can be quantized.</summary>
    static string? WhyNot(NodeProto node, OnnxGraph graph, Func<string, bool> isFloatActivation)
    {
        int weight = node.OpType == "MatMul" && graph.IsInitializer(node.Input[0]) ? 0 : 1;
        if (node.Input.Count <= weight || graph.Constant(node.Input[weight]) is not { } w || !graph.IsInitializer(node.Input[weight]))
            return "its weight is not an initializer";
        if (w.DataType != (int)TensorProto.Types.DataType.Float) return $"its weight is {OnnxTensors.DataTypeName(w.DataType)}, not FLOAT";
        if (!isFloatActivation(node.Input[1 - weight])) return "its input is not a float activation";
        if (graph.IsGraphOutput(node.Input[1 - weight])) return "its input is also a graph output (kept float)";
        if (node.OpType == "MatMul" && (weight == 0 || w.Dims.Count != 2)) return "only MatMul of an activation by a 2-D weight is quantized";
        if (node.OpType == "Gemm")
        {
            if (node.GetInt("transA", 0) != 0 || node.GetFloat("alpha", 1) != 1 || node.GetFloat("beta", 1) != 1) return "Gemm with transA, alpha or beta";
            long outputs = node.GetInt("transB", 0) != 0 ? w.Dims[0] : w.Dims[^1];
            if (node.Input.Count > 2 && node.Input[2].Length > 0
                && (graph.Constant(node.Input[2]) is not { } c || !graph.IsInitializer(node.Input[2]) || c.Dims.Count != 1 || c.Dims[0] != outputs))
                return "its bias is not one value per output (a broadcast bias)";
        }
        if (node.OpType == "Conv" && node.Input.Count > 2 && node.Input[2].Length > 0 && !graph.IsInitializer(node.Input[2]))
            return "its bias is not an initializer";
        return null;
    }

    /// <summary>Relu, or Clip with a constant lower bound of 0 (ReLU6): an activation whose output is never negative and
    /// is otherwise the identity below its upper bound.</summary>
    static bool IsZeroFloorActivation(NodeProto node, OnnxGraph graph)
    {
        if (!OnnxModel.IsDefaultDomain(node.Domain)) return false;
        if (node.OpType == "Relu") return true;
        if (node.OpType != "Clip") return false;
        float? min = graph.OpsetVersion < 11 ? node.GetFloat("min", float.MinValue)
            : node.Input.Count > 1 && graph.Constant(node.Input[1]) is { } t ? OnnxTensors.ReadFloats(t)[0] : null;
        return min == 0;
    }

    static Dataset Sample(Dataset data, int count, int seed)
    {
        if (data.Count <= count) return data;
        var indices = Enumerable.Range(0, data.Count).ToArray();
        new Random(seed).Shuffle(indices);
        return data.Take(indices.Take(count).Order().ToArray());
    }

    /// <summary>Asymmetric 8-bit for a range that contains 0 (so that 0, and padding, is exact). Unsigned: the activation type
    /// of ONNX Runtime's integer kernels on x86 (it rewrites signed activations to unsigned where it can, and leaves
    /// the convolutions after a tensor read by several layers in float where it cannot) and one of them on ARM.</summary>
    internal static (float Scale, byte ZeroPoint) ActivationScale((float Min, float Max) range)
    {
        float min = Math.Min(range.Min, 0), max = Math.Max(range.Max, 0);
        if (max - min < 1e-12f) max = min + 1e-6f; // a tensor that is always 0
        float scale = (max - min) / 255f;
        int zero = (int)Math.Round(-min / scale, MidpointRounding.ToEven);
        return (scale, (byte)Math.Clamp(zero, 0, 255));
    }

    static ModelProto Rewrite(ModelProto folded, OnnxGraph graph, List<NodeProto> quantized, Dictionary<NodeProto, NodeProto> folds,
                              List<string> tensors, Dictionary<string, (float Scale, byte ZeroPoint)> parameters)
    {
        var result = folded.Clone();
        var g = result.Graph;
        g.Node.Clear();
        var names = new HashSet<string>(graph.Nodes.SelectMany(n => n.Output).Concat(g.Initializer.Select(i => i.Name)).Concat(g.Input.Select(i => i.Name)), StringComparer.Ordinal);
        string Unique(string wanted)
        {
            string name = wanted;
            for (int i = 1; !names.Add(name); i++) name = $"{wanted}_{i}";
            return name;
        }
        var dequantized = tensors.ToDictionary(t => t, t => Unique(t + "_dequantized"), StringComparer.Ordinal);
        var removed = folds.Values.ToHashSet();
        var quantizedSet = quantized.ToHashSet();

        void EmitPair(string tensor)
        {
            var (scale, zero) = parameters[tensor];
            string s = Unique(tensor + "_scale"), z = Unique(tensor + "_zero_point"), q = Unique(tensor + "_quantized");
            g.Initializer.Add(OnnxTensors.CreateFloat(s, [], [scale]));
            g.Initializer.Add(OnnxTensors.CreateUint8(z, [], [zero]));
            g.Node.Add(Node("QuantizeLinear", Unique(tensor + "_quantize"), [tensor, s, z], [q]));
            g.Node.Add(Node("DequantizeLinear", Unique(tensor + "_dequantize"), [q, s, z], [dequantized[tensor]]));
        }

        foreach (var input in graph.Inputs.Where(i => dequantized.ContainsKey(i.Name))) EmitPair(input.Name);
        foreach (var original in graph.Nodes)
        {
            if (removed.Contains(original)) continue;
            var node = original.Clone();
            if (folds.TryGetValue(original, out var activation)) node.Output[0] = activation.Output[0];
            for (int i = 0; i < node.Input.Count; i++)
                if (dequantized.TryGetValue(node.Input[i], out var dq)) node.Input[i] = dq;
            if (quantizedSet.Contains(original)) QuantizeWeights(original, node, graph, g, parameters, Unique);
            g.Node.Add(node);
            foreach (string output in node.Output)
                if (dequantized.ContainsKey(output)) EmitPair(output);
        }
        // Initializers only the rewritten weights read are gone.
        var used = g.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var unused in g.Initializer.Where(i => !used.Contains(i.Name)).ToList()) g.Initializer.Remove(unused);
        foreach (var unused in g.Input.Where(i => graph.IsInitializer(i.Name) && !used.Contains(i.Name)).ToList()) g.Input.Remove(unused);
        return result;
    }

    /// <summary>Replaces the node's weight (and bias) inputs with DequantizeLinear of INT8 (INT32) initializers.</summary>
    static void QuantizeWeights(NodeProto original, NodeProto node, OnnxGraph graph, GraphProto g,
                                Dictionary<string, (float Scale, byte ZeroPoint)> parameters, Func<string, string> unique)
    {
        string activation = original.Input[0];
        var weightTensor = graph.Constant(original.Input[1])!;
        var weight = OnnxTensors.ReadFloats(weightTensor);
        long[] dims = weightTensor.Dims.ToArray();
        // The output-channel axis: Conv's filters are axis 0; Gemm's B is [N, K] with transB, else [K, N]; MatMul's is [K, N].
        int axis = original.OpType switch
        {
            "Conv" => 0,
            "Gemm" => original.GetInt("transB", 0) != 0 ? 0 : 1,
            _ => 1,
        };
        int channels = (int)dims[axis];
        long inner = dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);
        var scales = new float[channels];
        for (long i = 0; i < weight.Length; i++)
        {
            int c = (int)(i / inner % channels);
            scales[c] = Math.Max(scales[c], Math.Abs(weight[i]));
        }
        for (int c = 0; c < channels; c++) scales[c] = scales[c] > 0 ? scales[c] / 127f : 1f;
        var values = new sbyte[weight.Length];
        for (long i = 0; i < weight.Length; i++)
            values[i] = (sbyte)Math.Clamp(Math.Round(weight[i] / scales[(int)(i / inner % channels)], MidpointRounding.ToEven), -127, 127);

        string baseName = original.Input[1];
        node.Input[1] = DequantizeConstant(g, unique, baseName, OnnxTensors.CreateInt8(unique(baseName + "_quantized"), dims, values), scales,
                                           OnnxTensors.CreateInt8(unique(baseName + "_zero_point"), [channels], new sbyte[channels]), axis);

        if (original.Input.Count > 2 && original.Input[2].Length > 0)
        {
            string biasName = original.Input[2];
            var bias = OnnxTensors.ReadFloats(graph.Constant(biasName)!);
            float inputScale = parameters[activation].Scale;
            var biasScales = scales.Select(s => inputScale * s).ToArray();
            var quantizedBias = new int[bias.Length];
            for (int c = 0; c < bias.Length; c++)
                quantizedBias[c] = (int)Math.Clamp(Math.Round(bias[c] / biasScales[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
            node.Input[2] = DequantizeConstant(g, unique, biasName, OnnxTensors.CreateInt32(unique(biasName + "_quantized"), [bias.Length], quantizedBias),
                                               biasScales, OnnxTensors.CreateInt32(unique(biasName + "_zero_point"), [bias.Length], new int[bias.Length]), 0);
        }
    }

    static string DequantizeConstant(GraphProto g, Func<string, string> unique, string baseName, TensorProto values, float[] scales, TensorProto zeroPoints, int axis)
    {
        string scale = unique(baseName + "_scale"), output = unique(baseName + "_dequantized");
        g.Initializer.Add(values);
        g.Initializer.Add(OnnxTensors.CreateFloat(scale, [scales.Length], scales));
        g.Initializer.Add(zeroPoints);
        var dq = Node("DequantizeLinear", unique(baseName + "_dequantize"), [values.Name, scale, zeroPoints.Name], [output]);
        dq.SetInt("axis", axis);
        g.Node.Add(dq);
        return output;
    }

    static NodeProto Node(string op, string name, string[] inputs, string[] outputs)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        return node;
    }
}
