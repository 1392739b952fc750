using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>Which channels of each group to keep. Groups not listed keep every channel.</summary>
public sealed class PruningSelection
{
    readonly Dictionary<int, int[]> kept = [];

    public PruningSelection(ChannelGroups groups) => Groups = groups;

    public ChannelGroups Groups { get; }

    public IReadOnlyDictionary<int, int[]> Kept => kept;

    /// <summary>Keeps these channels (indices within the group) of a group.</summary>
    public PruningSelection Keep(ChannelGroup group, IEnumerable<int> channels)
    {
        var list = channels.Distinct().Order().ToArray();
        if (list.Length == 0) throw new ArgumentException($"group {group.Name} must keep at least one channel");
        if (list[0] < 0 || list[^1] >= group.Size)
            throw new ArgumentException($"group {group.Name} has channels 0..{group.Size - 1}; {list[^1]} does not exist");
        if (!group.Prunable && list.Length != group.Size)
            throw new ArgumentException($"group {group.Name} is not prunable: {group.Reason}");
        kept[group.Index] = list;
        return this;
    }

    public int KeptCount(ChannelGroup group) => kept.TryGetValue(group.Index, out var k) ? k.Length : group.Size;

    /// <summary>Per id (see <see cref="ChannelGroups"/>): whether its channel survives.</summary>
    internal bool[] KeptIds()
    {
        var masks = Groups.Groups.Select(g =>
        {
            var mask = new bool[g.Size];
            if (kept.TryGetValue(g.Index, out var k)) foreach (int c in k) mask[c] = true;
            else Array.Fill(mask, true);
            return mask;
        }).ToArray();
        var result = new bool[Groups.IdCount];
        for (int id = 0; id < result.Length; id++)
        {
            var (group, channel) = Groups.Locate(id);
            result[id] = group < 0 || masks[group][channel];
        }
        return result;
    }
}

/// <summary>A pruning request that cannot be carried out on this graph; the message says where and why.</summary>
public sealed class PruningException(string message) : Exception(message);

/// <summary>
/// Removes channels physically: conv filters and input slices, biases, BN parameters and running statistics,
/// depthwise <c>group</c> attributes, channel padding, constants broadcast along channels, and the columns of
/// Gemm/MatMul after Flatten. Everything else is copied unchanged.
/// </summary>
public static class StructuredPruner
{
    public static ModelProto Prune(PruningSelection selection)
    {
        var groups = selection.Groups;
        var model = groups.Model.Clone();
        var graph = groups.Graph;
        var keptIds = selection.KeptIds();
        var requests = new SliceRequests(graph);
        var nodes = model.Graph.Node; // same order as groups.Model's, so index i in both is the same node
        var originalNodes = groups.Model.Graph.Node;

        bool[]? Mask(string tensor) =>
            groups.TryGetSpace(tensor, out var space) ? space.Ids.Select(id => keptIds[id]).ToArray() : null;

        for (int i = 0; i < nodes.Count; i++)
        {
            var node = nodes[i];
            var original = originalNodes[i];
            string name = graph.NameOf(original);
            switch (node.OpType)
            {
                case "Conv":
                    {
                        var input = Mask(node.Input[0]);
                        var output = Mask(node.Output[0]);
                        if (input is null || output is null) break;
                        long group = node.GetInt("group", 1);
                        if (group == 1)
                        {
                            requests.Add(node.Input[1], 0, output, name);
                            requests.Add(node.Input[1], 1, input, name);
                        }
                        else if (input.Length == group && output.Length == group)
                        {
                            requests.Add(node.Input[1], 0, output, name);
                            node.SetInt("group", output.Count(k => k));
                        }
                        if (node.Input.Count > 2 && node.Input[2].Length > 0) requests.Add(node.Input[2], 0, output, name);
                        break;
                    }
                case "BatchNormalization":
                    {
                        var mask = Mask(node.Input[0]);
                        if (mask is null) break;
                        for (int k = 1; k <= 4; k++) requests.Add(node.Input[k], 0, mask, name);
                        break;
                    }
                case "Add" or "Mul" or "Sub" or "Div":
                    {
                        if (!groups.TryGetSpace(node.Output[0], out var space)) break;
                        var mask = Mask(node.Output[0])!;
                        int fromRight = groups.Shapes[node.Output[0]].Shape.Length - space.Axis;
                        foreach (string input in node.Input)
                        {
                            if (!graph.IsConstant(input)) continue;
                            var shape = groups.Shapes[input].Shape;
                            int axis = shape.Length - fromRight;
                            if (axis >= 0 && shape[axis] == mask.Length && mask.Length > 1) requests.Add(input, axis, mask, name);
                        }
                        break;
                    }
                case "Gemm" or "MatMul":
                    {
                        var input = Mask(node.Input[0]);
                        var output = Mask(node.Output[0]);
                        if (input is null || output is null) break;
                        bool transB = node.OpType == "Gemm" && node.GetInt("transB", 0) != 0;
                        requests.Add(node.Input[1], transB ? 1 : 0, input, name);
                        requests.Add(node.Input[1], transB ? 0 : 1, output, name);
                        if (node.OpType == "Gemm" && node.Input.Count > 2 && node.Input[2].Length > 0)
                        {
                            var bias = groups.Shapes[node.Input[2]].Shape;
                            if (bias.Length > 0 && bias[^1] == output.Length && output.Length > 1) requests.Add(node.Input[2], bias.Length - 1, output, name);
                        }
                        break;
                    }
                case "Pad":
                    RewritePad(model, groups, node, original, Mask(node.Output[0]));
                    break;
                case "Reshape":
                    RewriteFlatteningReshape(model, groups, node, original);
                    break;
            }
        }

        requests.Apply(model.Graph);
        model.Graph.ValueInfo.Clear(); // intermediate shapes changed; they are optional and re-inferred by any reader
        return model;
    }

    static void RewritePad(ModelProto model, ChannelGroups groups, NodeProto node, NodeProto original, bool[]? outputMask)
    {
        if (outputMask is null || !groups.TryGetSpace(original.Output[0], out var space)) return;
        var pads = groups.PadAmounts(original);
        if (pads is null) return;
        int rank = groups.Shapes[original.Input[0]].Shape.Length;
        int before = (int)pads[space.Axis], after = (int)pads[space.Axis + rank];
        if (before == 0 && after == 0) return;
        var updated = pads.ToArray();
        updated[space.Axis] = outputMask.Take(before).Count(k => k);
        updated[space.Axis + rank] = outputMask.Skip(outputMask.Length - after).Count(k => k);
        if (groups.Graph.OpsetVersion >= 11)
        {
            string name = OnnxModel.UniqueName(model, node.Input[1] + "_pruned");
            model.Graph.Initializer.Add(OnnxTensors.CreateInt64(name, [updated.Length], updated));
            node.Input[1] = name;
        }
        else node.SetInts(node.Attribute("pads") is not null ? "pads" : "paddings", updated);
    }

    /// <summary>A flattening Reshape with a literal feature count gets [0, -1], so it follows the pruned width.</summary>
    static void RewriteFlatteningReshape(ModelProto model, ChannelGroups groups, NodeProto node, NodeProto original)
    {
        if (!groups.TryGetSpace(original.Input[0], out _) || !groups.Graph.IsInitializer(original.Input[1])) return;
        var input = groups.Shapes[original.Input[0]].Shape;
        var output = groups.Shapes[original.Output[0]].Shape;
        // Only the flattening reshapes the grouping follows ([N, …] → [N, features]); any other one pinned its channels.
        if (output.Length != 2 || output[0] != input[0] || input.SequenceEqual(output) || node.GetInt("allowzero", 0) != 0) return;
        string name = OnnxModel.UniqueName(model, node.Input[1] + "_pruned");
        model.Graph.Initializer.Add(OnnxTensors.CreateInt64(name, [2], [0, -1])); // 0: copy the batch size
        node.Input[1] = name;
    }

    /// <summary>Collects, per initializer, which positions of which axes survive; applies each slice once.</summary>
    sealed class SliceRequests(OnnxGraph graph)
    {
        readonly Dictionary<string, Dictionary<int, (bool[] Mask, string Node)>> requests = new(StringComparer.Ordinal);

        public void Add(string tensor, int axis, bool[] mask, string node)
        {
            if (mask.All(k => k)) { Note(tensor, axis, mask, node); return; }
            if (!graph.IsInitializer(tensor))
                throw new PruningException($"node '{node}' needs '{tensor}' sliced, but it is not an initializer (computed or a Constant node)");
            Note(tensor, axis, mask, node);
        }

        void Note(string tensor, int axis, bool[] mask, string node)
        {
            if (!requests.TryGetValue(tensor, out var axes)) requests[tensor] = axes = [];
            if (axes.TryGetValue(axis, out var existing))
            {
                if (!existing.Mask.SequenceEqual(mask))
                    throw new PruningException($"'{tensor}' is shared by nodes '{existing.Node}' and '{node}', which need different channels removed");
                return;
            }
            axes[axis] = (mask, node);
        }

        public void Apply(GraphProto target)
        {
            for (int i = 0; i < target.Initializer.Count; i++)
            {
                var tensor = target.Initializer[i];
                if (!requests.TryGetValue(tensor.Name, out var axes) || axes.Values.All(a => a.Mask.All(k => k))) continue;
                var dims = tensor.Dims.ToArray();
                var values = OnnxTensors.ReadFloats(tensor);
                foreach (var (axis, (mask, node)) in axes.OrderBy(a => a.Key))
                {
                    if (axis >= dims.Length || dims[axis] != mask.Length)
                        throw new PruningException($"node '{node}': '{tensor.Name}' has shape [{string.Join("x", dims)}], " +
                                                   $"but {mask.Length} channels were expected along axis {axis}");
                    (values, dims) = Slice(values, dims, axis, mask);
                }
                target.Initializer[i] = OnnxTensors.CreateFloat(tensor.Name, dims, values);
            }
        }
    }

    /// <summary>Keeps the positions of <paramref name="axis"/> where <paramref name="keep"/> is true.</summary>
    internal static (float[] Values, long[] Dims) Slice(float[] values, long[] dims, int axis, bool[] keep)
    {
        long outer = dims.Take(axis).Aggregate(1L, (a, d) => a * d);
        long inner = dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);
        int kept = keep.Count(k => k);
        var result = new float[outer * kept * inner];
        long write = 0;
        for (long o = 0; o < outer; o++)
            for (int c = 0; c < keep.Length; c++)
            {
                if (!keep[c]) continue;
                Array.Copy(values, (o * keep.Length + c) * inner, result, write, inner);
                write += inner;
            }
        var newDims = dims.ToArray();
        newDims[axis] = kept;
        return (result, newDims);
    }
}
