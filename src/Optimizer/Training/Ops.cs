using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// ONNX operators in TorchSharp. Attributes are read once, when the module is built; each compiled node is a closure
/// over them, so a forward pass does no attribute parsing.
/// </summary>
internal static class Ops
{
    /// <summary>Training runs exactly the op set the analysis understands.</summary>
    public static IReadOnlySet<string> Supported => ShapeInference.SupportedOps;

    public static Func<Tensor?[], RunContext, Tensor[]> Compile(NodeProto node, OnnxGraph graph, OnnxModule module)
    {
        long opset = graph.OpsetVersion;
        float[]? ConstantFloats(int input) =>
            node.Input.Count > input && node.Input[input].Length > 0 && graph.Constant(node.Input[input]) is { } t ? OnnxTensors.ReadFloats(t) : null;
        long[]? ConstantInts(int input) =>
            node.Input.Count > input && node.Input[input].Length > 0 && graph.Constant(node.Input[input]) is { } t ? OnnxTensors.ReadInt64s(t) : null;

        switch (node.OpType)
        {
            case "Conv":
                return Conv(node);
            case "BatchNormalization":
                {
                    double epsilon = node.GetFloat("epsilon", 1e-5f);
                    double momentum = 1 - node.GetFloat("momentum", 0.9f); // ONNX weighs the old statistic, PyTorch the new one
                    return (x, c) =>
                    {
                        bool batchStatistics = c.Training || c.RecalibrationStep >= 0;
                        double m = c.RecalibrationStep >= 0 ? 1.0 / (c.RecalibrationStep + 1) : momentum;
                        return [F.batch_norm(x[0]!, x[3]!, x[4]!, x[1], x[2], batchStatistics, m, epsilon)];
                    };
                }
            case "Relu": return (x, _) => [F.relu(x[0]!)];
            case "LeakyRelu":
                {
                    double alpha = node.GetFloat("alpha", 0.01f);
                    return (x, _) => [F.leaky_relu(x[0]!, alpha)];
                }
            case "Clip":
                {
                    float? min = opset < 11 ? node.GetFloat("min", float.MinValue) : ConstantFloats(1)?[0];
                    float? max = opset < 11 ? node.GetFloat("max", float.MaxValue) : ConstantFloats(2)?[0];
                    if (opset >= 11 && (node.Input.Count > 1 && node.Input[1].Length > 0 && min is null || node.Input.Count > 2 && node.Input[2].Length > 0 && max is null))
                        throw new OnnxModelException("Clip bounds computed at run time are not supported", graph.NameOf(node), node.OpType);
                    return (x, _) => [x[0]!.clamp(min is { } lo ? (Scalar)lo : null, max is { } hi ? (Scalar)hi : null)];
                }
            case "Sigmoid": return (x, _) => [x[0]!.sigmoid()];
            case "Tanh": return (x, _) => [x[0]!.tanh()];
            case "HardSigmoid":
                {
                    double alpha = node.GetFloat("alpha", 0.2f), beta = node.GetFloat("beta", 0.5f);
                    return (x, _) => [(x[0]! * alpha + beta).clamp(0, 1)];
                }
            case "HardSwish": return (x, _) => [x[0]! * (x[0]! / 6.0 + 0.5).clamp(0, 1)];
            case "Add": return (x, _) => [x[0]! + x[1]!];
            case "Sub": return (x, _) => [x[0]! - x[1]!];
            case "Mul": return (x, _) => [x[0]! * x[1]!];
            case "Div": return (x, _) => [x[0]! / x[1]!];
            case "MaxPool" or "AveragePool":
                return Pool(node, graph);
            case "GlobalAveragePool": return (x, _) => [x[0]!.mean(Enumerable.Range(2, (int)x[0]!.dim() - 2).Select(d => (long)d).ToArray(), keepdim: true)];
            case "GlobalMaxPool": return (x, _) => [x[0]!.amax(Enumerable.Range(2, (int)x[0]!.dim() - 2).Select(d => (long)d).ToArray(), keepdim: true)];
            case "Flatten":
                {
                    long axis = node.GetInt("axis", 1);
                    return (x, _) =>
                    {
                        var shape = x[0]!.shape;
                        long a = axis < 0 ? axis + shape.Length : axis;
                        long outer = shape.Take((int)a).Aggregate(1L, (p, d) => p * d);
                        return [x[0]!.reshape(outer, -1)];
                    };
                }
            case "Reshape":
                {
                    bool allowZero = node.GetInt("allowzero", 0) != 0;
                    var constant = ConstantInts(1);
                    return (x, _) =>
                    {
                        var target = constant ?? x[1]!.data<long>().ToArray();
                        var shape = x[0]!.shape;
                        var resolved = target.Select((d, i) => d == 0 && !allowZero ? shape[i] : d).ToArray();
                        return [x[0]!.reshape(resolved)];
                    };
                }
            case "Gemm":
                {
                    double alpha = node.GetFloat("alpha", 1f), beta = node.GetFloat("beta", 1f);
                    bool transA = node.GetInt("transA", 0) != 0, transB = node.GetInt("transB", 0) != 0;
                    if (transB && !transA && alpha == 1 && beta == 1) return (x, _) => [F.linear(x[0]!, x[1]!, x.Length > 2 ? x[2] : null)];
                    return (x, _) =>
                    {
                        var a = transA ? x[0]!.t() : x[0]!;
                        var b = transB ? x[1]!.t() : x[1]!;
                        var y = a.mm(b) * alpha;
                        return [x.Length > 2 && x[2] is { } bias ? y + bias * beta : y];
                    };
                }
            case "MatMul": return (x, _) => [x[0]!.matmul(x[1]!)];
            case "Concat":
                {
                    long axis = node.GetInt("axis", 0);
                    return (x, _) => [torch.cat(x.Where(t => t is not null).Select(t => t!).ToArray(), axis)];
                }
            case "Pad":
                return Pad(node, graph, opset, ConstantInts(1), ConstantFloats(2));
            case "Dropout":
                {
                    double ratio = opset < 12 ? node.GetFloat("ratio", 0.5f) : ConstantFloats(1)?[0] ?? 0.5;
                    return (x, c) =>
                    {
                        var input = x[0]!;
                        if (!c.Training || c.RecalibrationStep >= 0 || ratio == 0) return [input, torch.ones_like(input, ScalarType.Bool)];
                        if (ratio >= 1) return [torch.zeros_like(input), torch.zeros_like(input, ScalarType.Bool)];
                        // The mask from the module's generator, drawn in logical (NCHW) order whatever the tensor's layout.
                        var keep = torch.rand(input.shape, generator: module.Random) >= ratio;
                        return [input * keep / (1 - ratio), keep];
                    };
                }
            case "Identity": return (x, _) => [x[0]!];
            case "Softmax" or "LogSoftmax":
                {
                    long axis = node.GetInt("axis", opset >= 13 ? -1 : 1);
                    bool log = node.OpType == "LogSoftmax";
                    return (x, _) =>
                    {
                        var input = x[0]!;
                        long a = axis < 0 ? axis + input.dim() : axis;
                        if (opset >= 13 || a == input.dim() - 1) return [log ? input.log_softmax(a) : input.softmax(a)];
                        // Before opset 13 the input is coerced to 2-D at the axis.
                        var flat = input.reshape(input.shape.Take((int)a).Aggregate(1L, (p, d) => p * d), -1);
                        return [(log ? flat.log_softmax(1) : flat.softmax(1)).reshape(input.shape)];
                    };
                }
            case "Cast":
                {
                    var to = (TensorProto.Types.DataType)node.GetInt("to", 1);
                    var type = to switch
                    {
                        TensorProto.Types.DataType.Float => ScalarType.Float32,
                        TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 => ScalarType.Int64,
                        _ => throw new OnnxModelException($"Cast to {to} is not supported in training", graph.NameOf(node), node.OpType),
                    };
                    return (x, _) => [x[0]!.to_type(type)];
                }
            case "Shape":
                {
                    long start = node.GetInt("start", 0), end = node.GetInt("end", long.MaxValue);
                    return (x, _) =>
                    {
                        var shape = x[0]!.shape;
                        long s = Math.Clamp(start < 0 ? start + shape.Length : start, 0, shape.Length);
                        long e = Math.Clamp(end < 0 ? end + shape.Length : end, 0, shape.Length);
                        var dims = shape.Skip((int)s).Take((int)Math.Max(0, e - s)).ToArray();
                        return [torch.tensor(dims, ScalarType.Int64)];
                    };
                }
            case "Gather":
                {
                    long axis = node.GetInt("axis", 0);
                    return (x, _) =>
                    {
                        var data = x[0]!;
                        long a = axis < 0 ? axis + data.dim() : axis;
                        var indices = x[1]!;
                        var flat = indices.reshape(-1);
                        flat = torch.where(flat < 0, flat + data.shape[a], flat);
                        var picked = data.index_select(a, flat);
                        long[] shape = [.. data.shape.Take((int)a), .. indices.shape, .. data.shape.Skip((int)a + 1)];
                        return [picked.reshape(shape)];
                    };
                }
            case "Unsqueeze" or "Squeeze":
                {
                    var axes = opset >= 13 ? ConstantInts(1) : node.GetInts("axes");
                    bool unsqueeze = node.OpType == "Unsqueeze";
                    return (x, _) =>
                    {
                        var t = x[0]!;
                        if (unsqueeze)
                        {
                            long rank = t.dim() + axes!.Length;
                            foreach (long a in axes.Select(a => a < 0 ? a + rank : a).Order()) t = t.unsqueeze(a);
                            return [t];
                        }
                        var drop = axes is null ? Enumerable.Range(0, (int)t.dim()).Where(d => t.shape[d] == 1).Select(d => (long)d).ToArray()
                                                : axes.Select(a => a < 0 ? a + t.dim() : a).ToArray();
                        return [t.reshape(t.shape.Where((_, d) => !drop.Contains(d)).ToArray())];
                    };
                }
            default:
                throw new OnnxModelException($"op '{node.OpType}' is not supported by the training engine", graph.NameOf(node), node.OpType);
        }
    }

    static Func<Tensor?[], RunContext, Tensor[]> Conv(NodeProto node)
    {
        long[] strides = node.GetInts("strides") ?? [1, 1];
        long[] dilations = node.GetInts("dilations") ?? [1, 1];
        long[] pads = node.GetInts("pads") ?? [0, 0, 0, 0];
        long group = node.GetInt("group", 1);
        string autoPad = node.GetString("auto_pad", "NOTSET");
        return (x, c) =>
        {
            var input = x[0]!;
            var weight = c.ChannelsLast && x[1]!.dim() == 4 ? OnnxModule.ToChannelsLast(x[1]!) : x[1]!;
            if (input.dim() != 4) throw new ArgumentException($"only 2-D convolutions (4-D inputs) are supported, got rank {input.dim()}");
            long[] p = autoPad is "SAME_UPPER" or "SAME_LOWER" ? SamePads(input.shape, weight.shape, strides, dilations, autoPad == "SAME_LOWER")
                     : autoPad == "VALID" ? [0, 0, 0, 0] : pads;
            if (p[0] == p[2] && p[1] == p[3])
                return [F.conv2d(input, weight, x.Length > 2 ? x[2] : null, strides, [p[0], p[1]], dilations, group)];
            var padded = F.pad(input, [p[1], p[3], p[0], p[2]]);
            return [F.conv2d(padded, weight, x.Length > 2 ? x[2] : null, strides, [0, 0], dilations, group)];
        };
    }

    static long[] SamePads(long[] input, long[] weight, long[] strides, long[] dilations, bool lower)
    {
        var pads = new long[4];
        for (int d = 0; d < 2; d++)
        {
            long size = input[d + 2], output = (size + strides[d] - 1) / strides[d];
            long total = Math.Max(0, (output - 1) * strides[d] + (weight[d + 2] - 1) * dilations[d] + 1 - size);
            long small = total / 2, large = total - small;
            pads[d] = lower ? large : small;
            pads[d + 2] = lower ? small : large;
        }
        return pads;
    }

    static Func<Tensor?[], RunContext, Tensor[]> Pool(NodeProto node, OnnxGraph graph)
    {
        long[] kernel = node.GetInts("kernel_shape")!;
        long[] strides = node.GetInts("strides") ?? [1, 1];
        long[] pads = node.GetInts("pads") ?? [0, 0, 0, 0];
        long[] dilations = node.GetInts("dilations") ?? [1, 1];
        bool ceil = node.GetInt("ceil_mode", 0) != 0;
        bool max = node.OpType == "MaxPool";
        bool countIncludePad = node.GetInt("count_include_pad", 0) != 0;
        if (kernel.Length != 2) throw new OnnxModelException("only 2-D pooling is supported", graph.NameOf(node), node.OpType);
        if (node.GetString("auto_pad", "NOTSET") is not ("NOTSET" or "VALID"))
            throw new OnnxModelException("pooling with auto_pad SAME is not supported in training", graph.NameOf(node), node.OpType);
        bool symmetric = pads[0] == pads[2] && pads[1] == pads[3];
        if (!max && !symmetric && !countIncludePad)
            throw new OnnxModelException("AveragePool with asymmetric pads that exclude padding is not supported in training", graph.NameOf(node), node.OpType);
        return (x, _) =>
        {
            var input = x[0]!;
            long[] padding = [pads[0], pads[1]];
            if (!symmetric)
            {
                input = F.pad(input, [pads[1], pads[3], pads[0], pads[2]], value: max ? double.NegativeInfinity : 0);
                padding = [0, 0];
            }
            return max
                ? [F.max_pool2d(input, kernel, strides, padding, dilations, ceil)]
                : [F.avg_pool2d(input, kernel, strides, padding, ceil, countIncludePad)];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> Pad(NodeProto node, OnnxGraph graph, long opset, long[]? constantPads, float[]? constantValue)
    {
        string mode = node.GetString("mode", "constant");
        long[]? attributePads = opset < 11 ? node.GetInts("pads") ?? node.GetInts("paddings") : null;
        double value = opset < 11 ? node.GetFloat("value", 0f) : constantValue?[0] ?? 0;
        var paddingMode = mode switch
        {
            "constant" => TorchSharp.PaddingModes.Constant,
            "reflect" => TorchSharp.PaddingModes.Reflect,
            "edge" => TorchSharp.PaddingModes.Replicate,
            _ => throw new OnnxModelException($"Pad mode '{mode}' is not supported", graph.NameOf(node), node.OpType),
        };
        return (x, _) =>
        {
            var pads = attributePads ?? constantPads ?? x[1]!.data<long>().ToArray();
            int rank = pads.Length / 2;
            // PyTorch lists (begin, end) pairs from the last axis backwards.
            var torchPads = new long[pads.Length];
            for (int d = 0; d < rank; d++)
            {
                torchPads[2 * d] = pads[rank - 1 - d];
                torchPads[2 * d + 1] = pads[2 * rank - 1 - d];
            }
            int trailingZeros = 0;
            while (trailingZeros < torchPads.Length && torchPads[^(trailingZeros + 1)] == 0) trailingZeros++;
            var used = torchPads[..^(trailingZeros - trailingZeros % 2)];
            return [used.Length == 0 ? x[0]! : F.pad(x[0]!, used, paddingMode, value)];
        };
    }
}
