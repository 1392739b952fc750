using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>
/// What a selection changes in the graph, collected from every node's rule (<see cref="OpRule.Slice"/>): per constant
/// tensor the kept positions of each axis, and attribute and input rewrites. The pruner applies it to a copy of the
/// model; the cost prediction reads the sliced dimensions without touching a value.
/// </summary>
internal sealed class SlicePlan : ISlicePlan
{
    readonly ChannelGroups groups;
    readonly bool[] keptIds;
    readonly Dictionary<string, Dictionary<int, (bool[] Mask, string Node)>> slices = new(StringComparer.Ordinal);
    readonly List<(NodeProto Node, string Name, long[] Values, bool List)> attributes = [];
    readonly List<(NodeProto Node, int Input, long[] Values)> inputs = [];

    SlicePlan(PruningSelection selection)
    {
        groups = selection.Groups;
        keptIds = selection.KeptIds();
    }

    public static SlicePlan Of(PruningSelection selection)
    {
        var plan = new SlicePlan(selection);
        foreach (var node in plan.groups.Graph.Nodes) OpRegistry.Find(node)?.Slice(node, plan);
        return plan;
    }

    public OnnxGraph Graph => groups.Graph;

    public TensorInfo Info(string tensor) => groups.Shapes[tensor];

    public int? ChannelAxis(string tensor) => groups.TryGetSpace(tensor, out var space) ? space.Axis : null;

    public bool[]? Kept(string tensor, int? axis = null) =>
        groups.TryGetSpace(tensor, out var space) && (axis is null || axis == space.Axis) ? KeptOf(space.Ids) : null;

    readonly Dictionary<int[], bool[]> masks = new(ReferenceEqualityComparer.Instance); // tensors that carry the same channels share one id array

    /// <summary>The kept mask of an id array (computed once per array).</summary>
    public bool[] KeptOf(int[] ids)
    {
        if (masks.TryGetValue(ids, out var mask)) return mask;
        mask = new bool[ids.Length];
        for (int i = 0; i < ids.Length; i++) mask[i] = keptIds[ids[i]];
        return masks[ids] = mask;
    }

    public void SliceInput(NodeProto node, int input, int axis, bool[] kept)
    {
        string tensor = node.Input[input];
        string name = Graph.NameOf(node);
        if (!kept.All(k => k) && !Graph.IsConstant(tensor))
            throw new PruningException($"node '{name}' needs '{tensor}' sliced, but it is computed at run time");
        if (!slices.TryGetValue(tensor, out var axes)) slices[tensor] = axes = [];
        if (axes.TryGetValue(axis, out var existing))
        {
            if (!existing.Mask.SequenceEqual(kept))
                throw new PruningException($"'{tensor}' is shared by nodes '{existing.Node}' and '{name}', which need different channels removed");
            return;
        }
        axes[axis] = (kept, name);
    }

    public void SetAttribute(NodeProto node, string name, long value) => attributes.Add((node, name, [value], false));

    public void SetAttribute(NodeProto node, string name, long[] values) => attributes.Add((node, name, values, true));

    public void ReplaceInput(NodeProto node, int input, long[] values) => inputs.Add((node, input, values));

    /// <summary>The dimensions of a constant tensor after slicing (its own when nothing is sliced).</summary>
    public long[] SlicedDims(string tensor)
    {
        var dims = Info(tensor).Shape;
        if (!slices.TryGetValue(tensor, out var axes)) return dims;
        dims = dims.ToArray();
        foreach (var (axis, (mask, _)) in axes)
            if (axis < dims.Length && dims[axis] == mask.Length) dims[axis] = mask.Count(k => k);
        return dims;
    }

    /// <summary>Carries the plan out on <paramref name="model"/>, a copy of the analysed model (same node order).</summary>
    public void ApplyTo(ModelProto model)
    {
        var indexOf = new Dictionary<NodeProto, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < groups.Model.Graph.Node.Count; i++) indexOf[groups.Model.Graph.Node[i]] = i;
        NodeProto Target(NodeProto original) => model.Graph.Node[indexOf[original]];

        foreach (var (node, name, values, list) in attributes)
        {
            if (list) Target(node).SetInts(name, values);
            else Target(node).SetInt(name, values[0]);
        }
        foreach (var (node, input, values) in inputs)
        {
            var target = Target(node);
            string original = input < target.Input.Count ? target.Input[input] : "";
            string name = OnnxModel.UniqueName(model, (original.Length > 0 ? original : Graph.NameOf(node) + $"_input{input}") + "_pruned");
            model.Graph.Initializer.Add(OnnxTensors.CreateInt64(name, [values.Length], values));
            while (target.Input.Count <= input) target.Input.Add("");
            target.Input[input] = name;
        }
        foreach (var (tensor, axes) in slices)
        {
            if (axes.Values.All(a => a.Mask.All(k => k))) continue;
            var initializers = model.Graph.Initializer;
            int index = Enumerable.Range(0, initializers.Count).FirstOrDefault(i => initializers[i].Name == tensor, -1);
            var source = index >= 0 ? initializers[index] : Graph.Constant(tensor)!;
            var sliced = Sliced(source, axes);
            if (index >= 0) initializers[index] = sliced;
            else // the output of a Constant node: its value changes in place
            {
                var constant = model.Graph.Node.First(n => n.OpType == "Constant" && n.Output.Count == 1 && n.Output[0] == tensor);
                constant.Attribute.Clear();
                constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = sliced });
            }
        }
    }

    static TensorProto Sliced(TensorProto tensor, Dictionary<int, (bool[] Mask, string Node)> axes)
    {
        var dims = tensor.Dims.ToArray();
        var values = OnnxTensors.ReadFloats(tensor);
        foreach (var (axis, (mask, node)) in axes.OrderBy(a => a.Key))
        {
            if (axis >= dims.Length || dims[axis] != mask.Length)
                throw new PruningException($"node '{node}': '{tensor.Name}' has shape [{string.Join("x", dims)}], " +
                                           $"but {mask.Length} channels were expected along axis {axis}");
            (values, dims) = StructuredPruner.Slice(values, dims, axis, mask);
        }
        return OnnxTensors.CreateFloat(tensor.Name, dims, values);
    }
}
