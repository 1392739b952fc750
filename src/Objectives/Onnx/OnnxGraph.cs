using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>
/// An analysis view of a model's graph: nodes in topological order, constant tensors (initializers and
/// Constant nodes), and the producer and consumers of every tensor. Built once from a <see cref="ModelProto"/>;
/// build a new one after changing the model.
/// </summary>
public sealed class OnnxGraph
{
    readonly Dictionary<string, TensorProto> constants = new(StringComparer.Ordinal);
    readonly Dictionary<string, NodeProto> producers = new(StringComparer.Ordinal);
    readonly Dictionary<string, List<NodeProto>> consumers = new(StringComparer.Ordinal);
    readonly Dictionary<NodeProto, string> names = new(ReferenceEqualityComparer.Instance);
    readonly HashSet<string> initializerNames = new(StringComparer.Ordinal);

    public OnnxGraph(ModelProto model)
    {
        Model = model;
        OpsetVersion = OnnxModel.OpsetVersion(model);
        var graph = model.Graph ?? throw new OnnxModelException("the model has no graph");

        foreach (var initializer in graph.Initializer)
        {
            constants[initializer.Name] = initializer;
            initializerNames.Add(initializer.Name);
        }
        // Before IR version 4 initializers were also listed as graph inputs; those are not real inputs.
        Inputs = graph.Input.Where(i => !constants.ContainsKey(i.Name)).ToList();
        Outputs = graph.Output.ToList();

        for (int i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            names[node] = node.Name.Length > 0 ? node.Name : $"{node.OpType}_{i}";
            foreach (string output in node.Output)
            {
                if (output.Length == 0) continue;
                if (producers.ContainsKey(output) || initializerNames.Contains(output))
                    throw new OnnxModelException($"tensor '{output}' is produced twice", names[node], node.OpType);
                producers[output] = node;
            }
            if (node.OpType == "Constant" && OnnxModel.IsDefaultDomain(node.Domain) && node.Output.Count == 1)
                constants[node.Output[0]] = ConstantValue(node, names[node]);
        }
        foreach (var node in graph.Node)
        {
            foreach (string input in node.Input)
            {
                if (input.Length == 0) continue; // an omitted optional input
                if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = [];
                if (!list.Contains(node)) list.Add(node);
            }
        }
        Nodes = TopologicalOrder(graph);
    }

    public ModelProto Model { get; }

    /// <summary>Opset version of the default domain.</summary>
    public long OpsetVersion { get; }

    /// <summary>Nodes in an order where every node follows the producers of its inputs (file order where free).</summary>
    public IReadOnlyList<NodeProto> Nodes { get; }

    /// <summary>Graph inputs that are fed at run time (initializers excluded).</summary>
    public IReadOnlyList<ValueInfoProto> Inputs { get; }

    public IReadOnlyList<ValueInfoProto> Outputs { get; }

    /// <summary>A stable, non-empty name for messages and reports (ONNX allows nameless nodes).</summary>
    public string NameOf(NodeProto node) => names.TryGetValue(node, out var name) ? name : node.Name;

    /// <summary>True for tensors known before run time: initializers and outputs of Constant nodes.</summary>
    public bool IsConstant(string tensor) => constants.ContainsKey(tensor);

    /// <summary>True for graph initializers (weights), as opposed to Constant nodes.</summary>
    public bool IsInitializer(string tensor) => initializerNames.Contains(tensor);

    public TensorProto? Constant(string tensor) => constants.GetValueOrDefault(tensor);

    public NodeProto? Producer(string tensor) => producers.GetValueOrDefault(tensor);

    public IReadOnlyList<NodeProto> Consumers(string tensor) =>
        consumers.TryGetValue(tensor, out var list) ? list : [];

    public bool IsGraphOutput(string tensor) => Outputs.Any(o => o.Name == tensor);

    public bool IsGraphInput(string tensor) => Inputs.Any(i => i.Name == tensor);

    /// <summary>The float values of a constant tensor, or an error naming the node that needs it.</summary>
    public float[] ConstantFloats(string tensor, NodeProto consumer)
    {
        var constant = Constant(tensor)
            ?? throw new OnnxModelException($"input '{tensor}' must be a constant (initializer), but is computed at run time",
                                            NameOf(consumer), consumer.OpType);
        return OnnxTensors.ReadFloats(constant);
    }

    List<NodeProto> TopologicalOrder(GraphProto graph)
    {
        var available = new HashSet<string>(Inputs.Select(i => i.Name), StringComparer.Ordinal);
        available.UnionWith(initializerNames);
        var pending = new int[graph.Node.Count];
        var waiting = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            foreach (string input in node.Input.Distinct())
            {
                if (input.Length == 0 || available.Contains(input)) continue;
                if (!producers.ContainsKey(input))
                    throw new OnnxModelException($"input '{input}' is neither a graph input, an initializer nor any node's output",
                                                 names[node], node.OpType);
                pending[i]++;
                if (!waiting.TryGetValue(input, out var list)) waiting[input] = list = [];
                list.Add(i);
            }
        }
        // Kahn's algorithm with a min-heap on file position: the file's order wherever it is already valid.
        var ready = new PriorityQueue<int, int>();
        for (int i = 0; i < pending.Length; i++) if (pending[i] == 0) ready.Enqueue(i, i);
        var order = new List<NodeProto>(graph.Node.Count);
        while (ready.TryDequeue(out int index, out _))
        {
            var node = graph.Node[index];
            order.Add(node);
            foreach (string output in node.Output)
            {
                if (!waiting.TryGetValue(output, out var dependants)) continue;
                foreach (int d in dependants) if (--pending[d] == 0) ready.Enqueue(d, d);
            }
        }
        if (order.Count != graph.Node.Count)
        {
            int stuck = Array.FindIndex(pending, p => p > 0);
            var node = graph.Node[stuck];
            throw new OnnxModelException("the graph has a cycle through this node", names[node], node.OpType);
        }
        return order;
    }

    static TensorProto ConstantValue(NodeProto node, string name)
    {
        string output = node.Output[0];
        TensorProto tensor;
        if (node.Attribute("value") is { T: not null } value) tensor = value.T.Clone();
        else if (node.Attribute("value_float") is { } f) tensor = OnnxTensors.CreateFloat(output, [], [f.F]);
        else if (node.Attribute("value_floats") is { } fs) tensor = OnnxTensors.CreateFloat(output, [fs.Floats.Count], fs.Floats.ToArray());
        else if (node.Attribute("value_int") is { } n) tensor = OnnxTensors.CreateInt64(output, [], [n.I]);
        else if (node.Attribute("value_ints") is { } ns) tensor = OnnxTensors.CreateInt64(output, [ns.Ints.Count], ns.Ints.ToArray());
        else throw new OnnxModelException("Constant node without a supported value attribute (value, value_float(s), value_int(s))", name, node.OpType);
        tensor.Name = output;
        return tensor;
    }
}
