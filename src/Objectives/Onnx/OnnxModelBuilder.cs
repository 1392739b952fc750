using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>
/// Writes ONNX graphs node by node: what the network builders and the tests use to make models.
/// Tensor names are generated unless given; every method returns the name of the tensor it produced.
/// </summary>
public sealed class OnnxModelBuilder
{
    readonly ModelProto model;
    readonly HashSet<string> usedNames = new(StringComparer.Ordinal);
    int counter;

    public OnnxModelBuilder(string graphName, long opset = 17)
    {
        model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "ParetoPrune",
            Graph = new GraphProto { Name = graphName },
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    public long Opset => model.OpsetImport[0].Version;

    /// <summary>A float input; a dimension of -1 is written as the symbolic dimension "batch".</summary>
    public string Input(string name, params long[] shape)
    {
        Reserve(name);
        model.Graph.Input.Add(ValueInfo(name, shape));
        return name;
    }

    public void Output(string tensor, params long[] shape)
    {
        model.Graph.Output.Add(ValueInfo(tensor, shape));
    }

    public string Initializer(string name, long[] dims, float[] values)
    {
        Reserve(name);
        model.Graph.Initializer.Add(OnnxTensors.CreateFloat(name, dims, values));
        return name;
    }

    public string Int64Initializer(string name, long[] dims, long[] values)
    {
        Reserve(name);
        model.Graph.Initializer.Add(OnnxTensors.CreateInt64(name, dims, values));
        return name;
    }

    /// <summary>Adds a node with one output. Attribute values may be long, int, float, string, long[] or int[].</summary>
    public string Node(string opType, string[] inputs, string? name = null, params (string Name, object Value)[] attributes) =>
        NodeWithOutputs(opType, inputs, 1, name, attributes)[0];

    public string[] NodeWithOutputs(string opType, string[] inputs, int outputs, string? name = null, params (string Name, object Value)[] attributes)
    {
        string nodeName = name ?? $"{opType.ToLowerInvariant()}{counter++}";
        var node = new NodeProto { OpType = opType, Name = nodeName };
        node.Input.Add(inputs);
        var outputNames = new string[outputs];
        for (int o = 0; o < outputs; o++)
        {
            outputNames[o] = UniqueName(outputs == 1 ? nodeName : $"{nodeName}_{o}");
            node.Output.Add(outputNames[o]);
        }
        foreach (var (attribute, value) in attributes)
        {
            switch (value)
            {
                case long l: node.SetInt(attribute, l); break;
                case int i: node.SetInt(attribute, i); break;
                case float f: node.SetFloat(attribute, f); break;
                case double d: node.SetFloat(attribute, (float)d); break;
                case string s: node.SetString(attribute, s); break;
                case long[] ls: node.SetInts(attribute, ls); break;
                case int[] ints: node.SetInts(attribute, ints.Select(v => (long)v)); break;
                default: throw new ArgumentException($"attribute '{attribute}' has unsupported value type {value.GetType().Name}");
            }
        }
        model.Graph.Node.Add(node);
        return outputNames;
    }

    public void SetMetadata(string key, string value) => OnnxModel.SetMetadata(model, key, value);

    public ModelProto Build() => model.Clone();

    string UniqueName(string wanted)
    {
        string name = wanted;
        for (int i = 1; usedNames.Contains(name); i++) name = $"{wanted}_{i}";
        usedNames.Add(name);
        return name;
    }

    void Reserve(string name)
    {
        if (!usedNames.Add(name)) throw new ArgumentException($"tensor name '{name}' is already used");
    }

    static ValueInfoProto ValueInfo(string name, long[] shape)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        foreach (long d in shape)
            tensorType.Shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "batch" }
                                           : new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }
}
