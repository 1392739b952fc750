using ParetoPrune.Objectives.Onnx.Ops;
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
    /// <param name="inputShapes">Shapes for graph inputs, overriding what the file declares (e.g. a batch size or an image size).</param>
    public static IReadOnlyDictionary<string, TensorInfo> Infer(OnnxGraph graph, IReadOnlyDictionary<string, long[]>? inputShapes = null)
    {
        var infos = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var input in graph.Inputs) infos[input.Name] = InputInfo(input, inputShapes?.GetValueOrDefault(input.Name));
        if (inputShapes is not null)
            foreach (string name in inputShapes.Keys)
                if (!graph.Inputs.Any(i => i.Name == name))
                    throw new OnnxModelException($"the model has no input named '{name}' (inputs: {string.Join(", ", graph.Inputs.Select(i => i.Name))})");

        // Ops without rules are pinned by the analysis, not refused: ONNX Runtime, which runs them, tells their shapes.
        var unknown = graph.Nodes.Where(n => OpRegistry.Find(n) is null).ToList();
        var fromRuntime = unknown.Count > 0 ? RuntimeShapes(graph, infos, unknown) : null;

        foreach (var node in graph.Nodes)
        {
            string name = graph.NameOf(node);
            var inputs = node.Input.Select(i => i.Length == 0 ? null : Lookup(graph, infos, i, node)).ToArray();
            var rule = OpRegistry.Find(node);
            TensorInfo[] outputs;
            try
            {
                outputs = rule is not null ? rule.InferShapes(new ShapeContext(node, inputs, graph))
                        : node.Output.Select(o => o.Length == 0 ? null! : fromRuntime!.Shapes.GetValueOrDefault(o)
                              ?? throw new OnnxModelException($"op '{node.OpType}'{(OnnxModel.IsDefaultDomain(node.Domain) ? "" : $" of domain '{node.Domain}'")} has no rules here, " +
                                                              $"and ONNX Runtime could not tell its output shapes ({fromRuntime.Failure}); supported: {string.Join(", ", OpRegistry.OpTypes.Order())}",
                                                              name, node.OpType)).ToArray();
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

    /// <summary>Output shapes of the given nodes as ONNX Runtime computes them on zero inputs of the inferred input shapes.</summary>
    sealed record Measured(Dictionary<string, TensorInfo> Shapes, string? Failure);

    static Measured RuntimeShapes(OnnxGraph graph, Dictionary<string, TensorInfo> inputs, List<NodeProto> nodes)
    {
        var shapes = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var probe = graph.Model.Clone();
        var wanted = nodes.SelectMany(n => n.Output).Where(o => o.Length > 0 && !graph.IsGraphOutput(o)).Distinct().ToList();
        foreach (string output in wanted) probe.Graph.Output.Add(new ValueInfoProto { Name = output });
        try
        {
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(OnnxModel.ToBytes(probe));
            var feeds = new List<Microsoft.ML.OnnxRuntime.OrtValue>();
            try
            {
                foreach (var input in graph.Inputs)
                {
                    var info = inputs[input.Name];
                    if (info.ElementType != (int)TensorProto.Types.DataType.Float) return new(shapes, $"input '{input.Name}' is not float");
                    feeds.Add(Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(new float[info.ElementCount], info.Shape));
                }
                var names = nodes.SelectMany(n => n.Output).Where(o => o.Length > 0).Distinct().ToList();
                using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
                using var results = session.Run(runOptions, graph.Inputs.Select(i => i.Name).ToList(), feeds, names);
                for (int i = 0; i < names.Count; i++)
                {
                    var type = results[i].GetTensorTypeAndShape();
                    shapes[names[i]] = new TensorInfo(type.Shape, (int)type.ElementDataType);
                }
            }
            finally
            {
                foreach (var feed in feeds) feed.Dispose();
            }
            return new(shapes, null);
        }
        catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException e)
        {
            return new(shapes, e.Message.Split('\n')[0]);
        }
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
            long[]? values = constant.DataType is ShapeMath.Int64Type or (int)TensorProto.Types.DataType.Int32 ? OnnxTensors.ReadInt64s(constant) : null;
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
        if (declared is null) throw new OnnxModelException($"input '{input.Name}' declares no shape; {GiveAShape}");
        var shape = new long[declared.Count];
        for (int d = 0; d < shape.Length; d++)
        {
            var dim = declared[d];
            if (dim.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dim.DimValue > 0) shape[d] = dim.DimValue;
            else if (d == 0) shape[d] = 1; // the batch dimension: costs are reported per image
            else
            {
                string what = dim.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam ? $"symbolic dimension '{dim.DimParam}'" : "unknown dimension";
                throw new OnnxModelException($"input '{input.Name}' has a {what} at axis {d}; {GiveAShape}");
            }
        }
        return new TensorInfo(shape, tensorType.ElemType);
    }

    /// <summary>Where to go from a model whose input size is not fixed: the one command that takes a shape, and the way to
    /// make the others work (they train, prune and measure at the file's own size).</summary>
    const string GiveAShape = "`paretoprune inspect MODEL --input-shape 1x3x32x32` counts it at a shape you give; to prune, evaluate, " +
                              "measure, fine-tune or search it, export the model with a fixed input height and width (e.g. torch.onnx.export " +
                              "without dynamic_axes on them)";
}
