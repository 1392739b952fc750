using Google.Protobuf;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>The cost of one node: multiply-accumulates, learnable parameters, and the bytes of its outputs.</summary>
public sealed record NodeCost(string Name, string OpType, long[] OutputShape, long Macs, long Params, long OutputBytes);

/// <summary>
/// Analytic costs of a model for one input shape, counted on the ONNX file itself (the file that ships).
/// <list type="bullet">
/// <item>MACs: multiply-accumulates of Conv, Gemm and MatMul, what the pruning literature calls FLOPs.
/// Bias additions, normalisation, activations and pooling are not counted.</item>
/// <item>Params: learnable weights and biases (Conv, Gemm and MatMul weights and biases, BatchNormalization γ and β,
/// constants added to or multiplied with activations). BN running statistics, shapes and the Sub/Div constants of
/// input normalisation are not parameters.</item>
/// <item>Bytes: the model as this tool serializes it (what a file it writes occupies); activation bytes: all intermediate outputs, and the peak held at once
/// when nodes run in topological order and each tensor is freed after its last consumer.</item>
/// </list>
/// </summary>
public sealed record ModelCost(
    long[] InputShape,
    long[] OutputShape,
    IReadOnlyList<NodeCost> Nodes,
    long Macs,
    long Params,
    long SerializedBytes,
    long ActivationBytes,
    long PeakActivationBytes)
{
    public static ModelCost Analyze(ModelProto model, long[]? inputShape = null) =>
        Analyze(new OnnxGraph(model), inputShape);

    public static ModelCost Analyze(OnnxGraph graph, long[]? inputShape = null)
    {
        Dictionary<string, long[]>? given = null;
        if (inputShape is not null)
        {
            if (graph.Inputs.Count != 1)
                throw new OnnxModelException($"the model has {graph.Inputs.Count} inputs; an input shape can be given only for a single-input model");
            given = new() { [graph.Inputs[0].Name] = inputShape };
        }
        var shapes = ShapeInference.Infer(graph, given);
        return Analyze(graph, shapes);
    }

    public static ModelCost Analyze(OnnxGraph graph, IReadOnlyDictionary<string, TensorInfo> shapes)
    {
        var counted = new HashSet<string>(StringComparer.Ordinal); // a shared weight is counted once
        var nodes = new List<NodeCost>(graph.Nodes.Count);
        foreach (var node in graph.Nodes)
        {
            if (node.OpType == "Constant") continue;
            var output = node.Output.Count > 0 && shapes.TryGetValue(node.Output[0], out var o) ? o : null;
            long parameters = 0;
            foreach (int slot in LearnableInputs(node))
            {
                if (slot >= node.Input.Count) continue;
                string name = node.Input[slot];
                if (name.Length == 0 || !graph.IsInitializer(name) || !counted.Add(name)) continue;
                var tensor = graph.Constant(name)!;
                if (!IsIntegerType(tensor.DataType))
                    parameters += OnnxTensors.ElementCount(tensor);
            }
            long outputBytes = node.Output.Where(n => n.Length > 0 && shapes.ContainsKey(n)).Sum(n => shapes[n].Bytes);
            nodes.Add(new NodeCost(graph.NameOf(node), node.OpType, output?.Shape ?? [], NodeMacs(node, shapes), parameters, outputBytes));
        }

        var inputShapeResult = graph.Inputs.Count > 0 ? shapes[graph.Inputs[0].Name].Shape : [];
        var outputShape = graph.Outputs.Count > 0 && shapes.TryGetValue(graph.Outputs[0].Name, out var oi) ? oi.Shape : [];
        return new ModelCost(
            inputShapeResult, outputShape, nodes,
            nodes.Sum(n => n.Macs), nodes.Sum(n => n.Params),
            graph.Model.CalculateSize(), // the exact serialized size, without writing the bytes
            nodes.Sum(n => n.OutputBytes),
            PeakActivation(graph, shapes));
    }

    static bool IsIntegerType(int dataType) => (TensorProto.Types.DataType)dataType is
        TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Int16
        or TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Uint16
        or TensorProto.Types.DataType.Uint32 or TensorProto.Types.DataType.Uint64 or TensorProto.Types.DataType.Bool;

    /// <summary>Which input slots of an op hold learnable tensors when they are initializers (the one rule for what a
    /// parameter is: counting here, training in the TorchSharp module).</summary>
    public static IEnumerable<int> LearnableInputs(NodeProto node) => node.OpType switch
    {
        "Conv" => [1, 2],
        "Gemm" => [0, 1, 2],
        "MatMul" => [0, 1],
        "BatchNormalization" => [1, 2],
        "Add" or "Mul" => [0, 1],
        _ => [],
    };

    static long NodeMacs(NodeProto node, IReadOnlyDictionary<string, TensorInfo> shapes)
    {
        switch (node.OpType)
        {
            case "Conv":
                {
                    var output = shapes[node.Output[0]];
                    var weight = shapes[node.Input[1]].Shape;
                    // Each output element accumulates (C_in / group) × kernel products; weight[1] is exactly C_in / group.
                    long perOutput = weight.Skip(1).Aggregate(1L, (a, d) => a * d);
                    return output.ElementCount * perOutput;
                }
            case "Gemm":
                {
                    var a = shapes[node.Input[0]].Shape;
                    long k = node.GetInt("transA", 0) != 0 ? a[0] : a[1];
                    return shapes[node.Output[0]].ElementCount * k;
                }
            case "MatMul":
                {
                    var a = shapes[node.Input[0]].Shape;
                    return shapes[node.Output[0]].ElementCount * a[^1];
                }
            default:
                return 0;
        }
    }

    static long PeakActivation(OnnxGraph graph, IReadOnlyDictionary<string, TensorInfo> shapes)
    {
        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Nodes.Count; i++)
            foreach (string input in graph.Nodes[i].Input)
                if (input.Length > 0 && !graph.IsConstant(input)) lastUse[input] = i;

        long Size(string tensor) => shapes.TryGetValue(tensor, out var info) ? info.Bytes : 0;
        var live = new HashSet<string>(graph.Inputs.Select(i => i.Name), StringComparer.Ordinal);
        long current = live.Sum(Size), peak = current;
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            if (node.OpType == "Constant") continue;
            foreach (string output in node.Output)
                if (output.Length > 0 && live.Add(output)) current += Size(output);
            peak = Math.Max(peak, current);
            foreach (string tensor in node.Input.Concat(node.Output).Distinct())
            {
                if (tensor.Length == 0 || !live.Contains(tensor) || graph.IsGraphOutput(tensor)) continue;
                if (lastUse.GetValueOrDefault(tensor, -1) <= i)
                {
                    live.Remove(tensor);
                    current -= Size(tensor);
                }
            }
        }
        return peak;
    }
}
