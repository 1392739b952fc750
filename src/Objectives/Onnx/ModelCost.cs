using Google.Protobuf;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>The cost of one node: multiply-accumulates, learnable parameters, and the bytes of its outputs.</summary>
public sealed record NodeCost(string Name, string OpType, long[] OutputShape, long Macs, long Params, long OutputBytes);

/// <summary>
/// Analytic costs of a model for one input shape, counted on the ONNX file itself (the file that ships).
/// <list type="bullet">
/// <item>MACs: multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul (each op's rule, <see cref="OpRule.Macs"/>), what the pruning literature calls FLOPs.
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
    /// <summary>Bytes of the parameters as stored: four per float, one per INT8 weight of a quantized model.</summary>
    public long ParamBytes { get; init; }

    /// <summary>Of <see cref="Macs"/>, those of layers whose weights are stored as integers and read through
    /// DequantizeLinear (a QDQ model): what runtimes run on 8-bit integer kernels.</summary>
    public long Int8Macs { get; init; }

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
        long parameterBytes = 0, int8Macs = 0;
        foreach (var node in graph.Nodes)
        {
            if (node.OpType == "Constant") continue;
            var output = node.Output.Count > 0 && shapes.TryGetValue(node.Output[0], out var o) ? o : null;
            long parameters = 0, macs = NodeMacs(node, shapes);
            bool integerWeights = false;
            foreach (int slot in OpRegistry.LearnableInputs(node))
            {
                if (slot >= node.Input.Count) continue;
                string name = node.Input[slot];
                // In a quantized (QDQ) model a weight is the integer initializer that a DequantizeLinear reads.
                bool dequantized = false;
                if (graph.Producer(name) is { OpType: "DequantizeLinear" } dq && graph.IsInitializer(dq.Input[0]))
                    (name, dequantized) = (dq.Input[0], true);
                integerWeights |= dequantized;
                if (name.Length == 0 || !graph.IsInitializer(name) || !counted.Add(name)) continue;
                var tensor = graph.Constant(name)!;
                if (dequantized || !OnnxTensors.IsInteger(tensor.DataType))
                {
                    parameters += OnnxTensors.ElementCount(tensor);
                    parameterBytes += OnnxTensors.ElementCount(tensor) * OnnxTensors.ElementSize(tensor.DataType);
                }
            }
            if (integerWeights) int8Macs += macs;
            long outputBytes = node.Output.Where(n => n.Length > 0 && shapes.ContainsKey(n)).Sum(n => shapes[n].Bytes);
            nodes.Add(new NodeCost(graph.NameOf(node), node.OpType, output?.Shape ?? [], macs, parameters, outputBytes));
        }

        var inputShapeResult = graph.Inputs.Count > 0 ? shapes[graph.Inputs[0].Name].Shape : [];
        var outputShape = graph.Outputs.Count > 0 && shapes.TryGetValue(graph.Outputs[0].Name, out var oi) ? oi.Shape : [];
        return new ModelCost(
            inputShapeResult, outputShape, nodes,
            nodes.Sum(n => n.Macs), nodes.Sum(n => n.Params),
            graph.Model.CalculateSize(), // the exact serialized size, without writing the bytes
            nodes.Sum(n => n.OutputBytes),
            PeakActivation(graph, shapes)) { ParamBytes = parameterBytes, Int8Macs = int8Macs };
    }

    static long NodeMacs(NodeProto node, IReadOnlyDictionary<string, TensorInfo> shapes) =>
        OpRegistry.Find(node)?.Macs(node, tensor => shapes[tensor].Shape) ?? 0;

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
