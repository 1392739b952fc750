using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>The static type of one tensor: its shape, element type, and its values when they are known
/// integers (the Shape → Gather → Concat → Reshape chains that exporters write for <c>x.view(n, -1)</c>).</summary>
public sealed record TensorInfo(long[] Shape, int ElementType, long[]? KnownValues = null)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);

    public long Bytes => ElementCount * Math.Max(1, OnnxTensors.ElementSize(ElementType));

    public override string ToString() => string.Join("x", Shape);
}

/// <summary>
/// Static shape inference for the op set ParetoPrune supports. Every shape must resolve to numbers: a symbolic
/// batch dimension becomes 1 (or what the caller gives), any other unknown is an error naming the input or node.
/// </summary>
public static class ShapeInference
{
    /// <summary>Ops whose output shapes (and costs) we understand.</summary>
    public static readonly IReadOnlySet<string> SupportedOps = new HashSet<string>(StringComparer.Ordinal)
    {
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
        "Add", "Mul", "Sub", "Div", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Flatten",
        "Reshape", "Gemm", "MatMul", "Concat", "Pad", "Dropout", "Identity", "Softmax", "LogSoftmax",
        "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast",
    };

    const int FloatType = (int)TensorProto.Types.DataType.Float;
    const int Int64Type = (int)TensorProto.Types.DataType.Int64;

    /// <param name="inputShapes">Shapes for graph inputs, overriding what the file declares (e.g. a batch size or an image size).</param>
    public static IReadOnlyDictionary<string, TensorInfo> Infer(OnnxGraph graph, IReadOnlyDictionary<string, long[]>? inputShapes = null)
    {
        var infos = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var input in graph.Inputs) infos[input.Name] = InputInfo(input, inputShapes?.GetValueOrDefault(input.Name));
        if (inputShapes is not null)
            foreach (string name in inputShapes.Keys)
                if (!graph.Inputs.Any(i => i.Name == name))
                    throw new OnnxModelException($"the model has no input named '{name}' (inputs: {string.Join(", ", graph.Inputs.Select(i => i.Name))})");

        foreach (var node in graph.Nodes)
        {
            string name = graph.NameOf(node);
            if (!OnnxModel.IsDefaultDomain(node.Domain))
                throw new OnnxModelException($"ops of domain '{node.Domain}' are not supported", name, node.OpType);
            if (!SupportedOps.Contains(node.OpType))
                throw new OnnxModelException($"op '{node.OpType}' is not supported (supported: {string.Join(", ", SupportedOps.Order())})",
                                             name, node.OpType);
            if (node.OpType == "Constant")
            {
                Lookup(graph, infos, node.Output[0], node);
                continue;
            }
            var inputs = node.Input.Select(i => i.Length == 0 ? null : Lookup(graph, infos, i, node)).ToArray();
            TensorInfo[] outputs;
            try
            {
                outputs = InferNode(node, inputs, graph.OpsetVersion);
            }
            catch (OnnxModelException) { throw; }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or IndexOutOfRangeException or OverflowException)
            {
                throw new OnnxModelException($"cannot infer the output shape: {e.Message}", name, node.OpType, e);
            }
            catch (ShapeException e)
            {
                throw new OnnxModelException(e.Message, name, node.OpType);
            }
            for (int o = 0; o < node.Output.Count && o < outputs.Length; o++)
                if (node.Output[o].Length > 0) infos[node.Output[o]] = outputs[o];
        }
        return infos;
    }

    /// <summary>Parses "1x3x32x32" (also with commas or spaces).</summary>
    public static long[] ParseShape(string text)
    {
        var parts = text.Split(['x', 'X', ',', ' ', '×'], StringSplitOptions.RemoveEmptyEntries);
        var shape = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], out shape[i]) || shape[i] <= 0)
                throw new FormatException($"'{text}' is not a shape like 1x3x32x32: '{parts[i]}' is not a positive integer");
        if (shape.Length == 0) throw new FormatException($"'{text}' is not a shape like 1x3x32x32");
        return shape;
    }

    static TensorInfo Lookup(OnnxGraph graph, Dictionary<string, TensorInfo> infos, string tensor, NodeProto node)
    {
        if (infos.TryGetValue(tensor, out var info)) return info;
        if (graph.Constant(tensor) is { } constant)
        {
            long[]? values = constant.DataType is Int64Type or (int)TensorProto.Types.DataType.Int32 ? OnnxTensors.ReadInt64s(constant) : null;
            info = new TensorInfo(OnnxTensors.Shape(constant), constant.DataType, values);
            infos[tensor] = info;
            return info;
        }
        throw new OnnxModelException($"the shape of input '{tensor}' is unknown", graph.NameOf(node), node.OpType);
    }

    static TensorInfo InputInfo(ValueInfoProto input, long[]? given)
    {
        var tensorType = input.Type?.TensorType
            ?? throw new OnnxModelException($"graph input '{input.Name}' is not a tensor");
        var declared = tensorType.Shape?.Dim;
        if (given is not null)
        {
            if (declared is not null && declared.Count != given.Length)
                throw new OnnxModelException($"input '{input.Name}' has rank {declared.Count}, but the given shape [{string.Join("x", given)}] has rank {given.Length}");
            // Batch and spatial sizes may differ from what the file declares (fully convolutional parts scale);
            // channels are tied to the weights.
            if (declared is { Count: > 1 } && declared[1].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue
                && declared[1].DimValue > 0 && declared[1].DimValue != given[1])
                throw new OnnxModelException($"input '{input.Name}' has {declared[1].DimValue} channels at axis 1, but the given shape says {given[1]}");
            return new TensorInfo(given, tensorType.ElemType);
        }
        if (declared is null) throw new OnnxModelException($"input '{input.Name}' declares no shape; give one (e.g. --input-shape 1x3x32x32)");
        var shape = new long[declared.Count];
        for (int d = 0; d < shape.Length; d++)
        {
            var dim = declared[d];
            if (dim.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dim.DimValue > 0) shape[d] = dim.DimValue;
            else if (d == 0) shape[d] = 1; // the batch dimension: costs are reported per image
            else
            {
                string what = dim.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? $"symbolic dimension '{dim.DimParam}'" : "unknown dimension";
                throw new OnnxModelException($"input '{input.Name}' has a {what} at axis {d}; give the shape (e.g. --input-shape 1x3x32x32)");
            }
        }
        return new TensorInfo(shape, tensorType.ElemType);
    }

    sealed class ShapeException(string message) : Exception(message);

    static TensorInfo[] InferNode(NodeProto node, TensorInfo?[] inputs, long opset)
    {
        TensorInfo X() => inputs.Length > 0 && inputs[0] is { } x ? x : throw new ShapeException("its first input is missing");
        TensorInfo Same() => X() with { KnownValues = null };
        switch (node.OpType)
        {
            case "Relu" or "LeakyRelu" or "Clip" or "Sigmoid" or "HardSigmoid" or "HardSwish" or "Tanh" or "Softmax" or "LogSoftmax":
                return [Same()];
            case "Identity":
                return [X()];
            case "Dropout":
                return [Same(), Same() with { ElementType = (int)TensorProto.Types.DataType.Bool }];
            case "BatchNormalization":
                return [Same()];
            case "Cast":
                return [X() with { ElementType = (int)node.GetInt("to", FloatType) }];
            case "Add" or "Mul" or "Sub" or "Div":
                return [Broadcast(node, inputs)];
            case "Conv":
                return [Conv(node, X(), Required(inputs, 1, "weight"))];
            case "MaxPool" or "AveragePool":
                {
                    var output = Pool(node, X());
                    return node.OpType == "MaxPool" ? [output, output with { ElementType = Int64Type }] : [output];
                }
            case "GlobalAveragePool" or "GlobalMaxPool":
                {
                    var shape = X().Shape.ToArray();
                    for (int d = 2; d < shape.Length; d++) shape[d] = 1;
                    return [new TensorInfo(shape, X().ElementType)];
                }
            case "Flatten":
                {
                    var shape = X().Shape;
                    int axis = (int)Normalise(node.GetInt("axis", 1), shape.Length + 1);
                    long outer = shape.Take(axis).Aggregate(1L, (a, d) => a * d);
                    long inner = shape.Skip(axis).Aggregate(1L, (a, d) => a * d);
                    return [new TensorInfo([outer, inner], X().ElementType)];
                }
            case "Reshape":
                return [Reshape(node, X(), Required(inputs, 1, "shape"))];
            case "Gemm":
                return [Gemm(node, X(), Required(inputs, 1, "B"))];
            case "MatMul":
                return [MatMul(X(), Required(inputs, 1, "B"))];
            case "Concat":
                return [Concat(node, inputs)];
            case "Pad":
                return [Pad(node, X(), inputs, opset)];
            case "Shape":
                {
                    var shape = X().Shape;
                    long start = Normalise(node.GetInt("start", 0), shape.Length, clamp: true);
                    long end = Normalise(node.GetInt("end", shape.Length), shape.Length, clamp: true);
                    var values = shape.Skip((int)start).Take((int)Math.Max(0, end - start)).ToArray();
                    return [new TensorInfo([values.Length], Int64Type, values)];
                }
            case "Gather":
                return [Gather(node, X(), Required(inputs, 1, "indices"))];
            case "Unsqueeze" or "Squeeze":
                return [SqueezeOrUnsqueeze(node, X(), inputs, opset)];
            default:
                throw new ShapeException($"op '{node.OpType}' is not supported");
        }
    }

    static TensorInfo Required(TensorInfo?[] inputs, int index, string what) =>
        index < inputs.Length && inputs[index] is { } info ? info : throw new ShapeException($"input {index} ({what}) is missing");

    static long Normalise(long axis, long rank, bool clamp = false)
    {
        long a = axis < 0 ? axis + rank : axis;
        if (clamp) return Math.Clamp(a, 0, rank);
        if (a < 0 || a >= Math.Max(rank, 1)) throw new ShapeException($"axis {axis} is out of range for rank {rank}");
        return a;
    }

    static TensorInfo Broadcast(NodeProto node, TensorInfo?[] inputs)
    {
        var present = inputs.Where(i => i is not null).Select(i => i!).ToArray();
        if (present.Length < 2) throw new ShapeException("it needs two inputs");
        int rank = present.Max(i => i.Shape.Length);
        var shape = new long[rank];
        for (int d = 0; d < rank; d++)
        {
            long size = 1;
            foreach (var input in present)
            {
                int k = d - (rank - input.Shape.Length);
                if (k < 0) continue;
                long s = input.Shape[k];
                if (s == 1 || s == size) continue;
                if (size != 1) throw new ShapeException($"shapes {string.Join(" and ", present.Select(p => "[" + p + "]"))} do not broadcast");
                size = s;
            }
            shape[d] = size;
        }
        long[]? values = null;
        if (present.All(p => p.KnownValues is not null) && present.All(p => p.ElementCount == shape.Aggregate(1L, (a, b) => a * b) || p.ElementCount == 1))
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            values = new long[count];
            for (int i = 0; i < count; i++)
            {
                long a = present[0].KnownValues![present[0].ElementCount == 1 ? 0 : i];
                long b = present[1].KnownValues![present[1].ElementCount == 1 ? 0 : i];
                values[i] = node.OpType switch { "Add" => a + b, "Sub" => a - b, "Mul" => a * b, _ => b == 0 ? 0 : a / b };
            }
        }
        return new TensorInfo(shape, present[0].ElementType, values);
    }

    /// <summary>Spatial output size shared by Conv and pooling: explicit pads, or auto_pad SAME/VALID.</summary>
    static long[] SpatialOutput(NodeProto node, long[] inputShape, long[] kernel, bool ceilMode)
    {
        int spatial = inputShape.Length - 2;
        if (kernel.Length != spatial) throw new ShapeException($"kernel rank {kernel.Length} does not match {spatial} spatial dimensions");
        long[] strides = node.GetInts("strides") is { Length: > 0 } s ? s : Enumerable.Repeat(1L, spatial).ToArray();
        long[] dilations = node.GetInts("dilations") is { Length: > 0 } dl ? dl : Enumerable.Repeat(1L, spatial).ToArray();
        long[] pads = node.GetInts("pads") is { Length: > 0 } p ? p : new long[2 * spatial];
        string autoPad = node.GetString("auto_pad", "NOTSET");
        if (strides.Length != spatial || dilations.Length != spatial || pads.Length != 2 * spatial)
            throw new ShapeException("strides, dilations or pads do not match the number of spatial dimensions");
        var output = new long[spatial];
        for (int d = 0; d < spatial; d++)
        {
            long input = inputShape[d + 2];
            long effectiveKernel = (kernel[d] - 1) * dilations[d] + 1;
            output[d] = autoPad switch
            {
                "SAME_UPPER" or "SAME_LOWER" => (input + strides[d] - 1) / strides[d],
                "VALID" => (input - effectiveKernel) / strides[d] + 1,
                "NOTSET" or "" => ceilMode
                    ? (long)Math.Ceiling((input + pads[d] + pads[d + spatial] - effectiveKernel) / (double)strides[d]) + 1
                    : (input + pads[d] + pads[d + spatial] - effectiveKernel) / strides[d] + 1,
                _ => throw new ShapeException($"auto_pad '{autoPad}' is not an ONNX value"),
            };
            if (ceilMode && autoPad is "NOTSET" or "" && (output[d] - 1) * strides[d] >= input + pads[d])
                output[d]--; // ONNX/PyTorch: the last window must start inside the input or its left padding
            if (output[d] <= 0)
                throw new ShapeException($"spatial size {input} at axis {d + 2} is too small for kernel {kernel[d]} (output would be {output[d]})");
        }
        return output;
    }

    static TensorInfo Conv(NodeProto node, TensorInfo x, TensorInfo w)
    {
        if (x.Shape.Length < 3) throw new ShapeException($"input has rank {x.Shape.Length}; Conv needs N×C×spatial");
        if (w.Shape.Length != x.Shape.Length) throw new ShapeException($"weight rank {w.Shape.Length} differs from input rank {x.Shape.Length}");
        long group = node.GetInt("group", 1);
        if (group <= 0 || x.Shape[1] % group != 0 || w.Shape[0] % group != 0)
            throw new ShapeException($"group {group} does not divide input channels {x.Shape[1]} and output channels {w.Shape[0]}");
        if (w.Shape[1] * group != x.Shape[1])
            throw new ShapeException($"weight expects {w.Shape[1] * group} input channels (shape [{w}], group {group}) but the input has {x.Shape[1]}");
        long[] kernel = node.GetInts("kernel_shape") ?? w.Shape[2..];
        var spatial = SpatialOutput(node, x.Shape, kernel, ceilMode: false);
        return new TensorInfo([x.Shape[0], w.Shape[0], .. spatial], x.ElementType);
    }

    static TensorInfo Pool(NodeProto node, TensorInfo x)
    {
        long[] kernel = node.GetInts("kernel_shape") ?? throw new ShapeException("kernel_shape is required");
        var spatial = SpatialOutput(node, x.Shape, kernel, ceilMode: node.GetInt("ceil_mode", 0) != 0);
        return new TensorInfo([x.Shape[0], x.Shape[1], .. spatial], x.ElementType);
    }

    static TensorInfo Reshape(NodeProto node, TensorInfo x, TensorInfo shapeInput)
    {
        var requested = shapeInput.KnownValues
            ?? throw new ShapeException("its target shape is computed at run time and could not be resolved statically");
        bool allowZero = node.GetInt("allowzero", 0) != 0;
        var shape = new long[requested.Length];
        int inferred = -1;
        for (int d = 0; d < shape.Length; d++)
        {
            long v = requested[d];
            if (v == -1)
            {
                if (inferred >= 0) throw new ShapeException("more than one -1 in the target shape");
                inferred = d;
                shape[d] = 1;
            }
            else if (v == 0 && !allowZero)
            {
                if (d >= x.Shape.Length) throw new ShapeException($"0 at axis {d} copies a dimension the input does not have");
                shape[d] = x.Shape[d];
            }
            else shape[d] = v;
        }
        long total = x.ElementCount;
        long known = shape.Aggregate(1L, (a, b) => a * b);
        if (inferred >= 0)
        {
            if (known == 0 || total % known != 0) throw new ShapeException($"cannot reshape {total} elements into [{string.Join(",", requested)}]");
            shape[inferred] = total / known;
        }
        else if (known != total) throw new ShapeException($"cannot reshape [{x}] ({total} elements) into [{string.Join("x", shape)}]");
        return new TensorInfo(shape, x.ElementType, x.KnownValues);
    }

    static TensorInfo Gemm(NodeProto node, TensorInfo a, TensorInfo b)
    {
        if (a.Shape.Length != 2 || b.Shape.Length != 2)
            throw new ShapeException($"Gemm needs 2-D inputs, got [{a}] and [{b}] (add a Flatten before it)");
        bool transA = node.GetInt("transA", 0) != 0, transB = node.GetInt("transB", 0) != 0;
        long m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        long kb = transB ? b.Shape[1] : b.Shape[0], n = transB ? b.Shape[0] : b.Shape[1];
        if (k != kb) throw new ShapeException($"inner dimensions differ: A is [{a}]{(transA ? "ᵀ" : "")}, B is [{b}]{(transB ? "ᵀ" : "")}");
        return new TensorInfo([m, n], a.ElementType);
    }

    static TensorInfo MatMul(TensorInfo a, TensorInfo b)
    {
        long[] sa = a.Shape.Length == 1 ? [1, a.Shape[0]] : a.Shape;
        long[] sb = b.Shape.Length == 1 ? [b.Shape[0], 1] : b.Shape;
        if (sa[^1] != sb[^2]) throw new ShapeException($"inner dimensions differ: [{a}] × [{b}]");
        var batchA = new TensorInfo(sa[..^2], a.ElementType);
        var batchB = new TensorInfo(sb[..^2], b.ElementType);
        long[] batch = batchA.Shape.Length == 0 && batchB.Shape.Length == 0 ? []
            : Broadcast(new NodeProto { OpType = "MatMul" }, [batchA.Shape.Length == 0 ? batchA with { Shape = [1] } : batchA,
                                                               batchB.Shape.Length == 0 ? batchB with { Shape = [1] } : batchB]).Shape;
        var shape = new List<long>(batch);
        if (a.Shape.Length > 1) shape.Add(sa[^2]);
        if (b.Shape.Length > 1) shape.Add(sb[^1]);
        return new TensorInfo(shape.ToArray(), a.ElementType);
    }

    static TensorInfo Concat(NodeProto node, TensorInfo?[] inputs)
    {
        var present = inputs.Where(i => i is not null).Select(i => i!).ToArray();
        if (present.Length == 0) throw new ShapeException("it has no inputs");
        int rank = present[0].Shape.Length;
        int axis = (int)Normalise(node.GetInt("axis", 0), rank);
        var shape = present[0].Shape.ToArray();
        shape[axis] = 0;
        foreach (var input in present)
        {
            if (input.Shape.Length != rank) throw new ShapeException("inputs have different ranks");
            for (int d = 0; d < rank; d++)
                if (d != axis && input.Shape[d] != shape[d])
                    throw new ShapeException($"input shapes {string.Join(", ", present.Select(p => "[" + p + "]"))} differ outside axis {axis}");
            shape[axis] += input.Shape[axis];
        }
        long[]? values = present.All(p => p.KnownValues is not null) && rank == 1 ? present.SelectMany(p => p.KnownValues!).ToArray() : null;
        return new TensorInfo(shape, present[0].ElementType, values);
    }

    static TensorInfo Pad(NodeProto node, TensorInfo x, TensorInfo?[] inputs, long opset)
    {
        long[]? pads = opset >= 11
            ? (inputs.Length > 1 && inputs[1] is { } p ? p.KnownValues ?? throw new ShapeException("its pads are computed at run time") : null)
            : node.GetInts("pads") ?? node.GetInts("paddings");
        if (pads is null || pads.Length != 2 * x.Shape.Length)
            throw new ShapeException($"pads must hold {2 * x.Shape.Length} values (begin and end of each axis)");
        if (opset >= 18 && inputs.Length > 3 && inputs[3] is not null)
            throw new ShapeException("Pad with an axes input is not supported");
        var shape = x.Shape.Select((d, i) => d + pads[i] + pads[i + x.Shape.Length]).ToArray();
        if (shape.Any(d => d <= 0)) throw new ShapeException($"padding [{string.Join(",", pads)}] leaves an empty tensor");
        return new TensorInfo(shape, x.ElementType);
    }

    static TensorInfo Gather(NodeProto node, TensorInfo data, TensorInfo indices)
    {
        int axis = (int)Normalise(node.GetInt("axis", 0), data.Shape.Length);
        long[] shape = [.. data.Shape[..axis], .. indices.Shape, .. data.Shape[(axis + 1)..]];
        long[]? values = null;
        if (data.KnownValues is not null && indices.KnownValues is not null && data.Shape.Length == 1)
            values = indices.KnownValues.Select(i => data.KnownValues[(int)(i < 0 ? i + data.Shape[0] : i)]).ToArray();
        return new TensorInfo(shape, data.ElementType, values);
    }

    static TensorInfo SqueezeOrUnsqueeze(NodeProto node, TensorInfo x, TensorInfo?[] inputs, long opset)
    {
        long[]? axes = opset >= 13
            ? (inputs.Length > 1 && inputs[1] is { } a ? a.KnownValues ?? throw new ShapeException("its axes are computed at run time") : null)
            : node.GetInts("axes");
        var shape = new List<long>(x.Shape);
        if (node.OpType == "Squeeze")
        {
            var drop = axes is null
                ? Enumerable.Range(0, shape.Count).Where(d => shape[d] == 1).ToHashSet()
                : axes.Select(a => (int)Normalise(a, x.Shape.Length)).ToHashSet();
            foreach (int d in drop)
                if (x.Shape[d] != 1) throw new ShapeException($"cannot squeeze axis {d} of size {x.Shape[d]}");
            shape = shape.Where((_, d) => !drop.Contains(d)).ToList();
        }
        else
        {
            if (axes is null) throw new ShapeException("Unsqueeze needs axes");
            int rank = x.Shape.Length + axes.Length;
            foreach (long position in axes.Select(axis => Normalise(axis, rank)).Order()) shape.Insert((int)position, 1);
        }
        return new TensorInfo(shape.ToArray(), x.ElementType, x.KnownValues);
    }
}
