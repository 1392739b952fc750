using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>
/// A set of channels that must be removed together, and the unit a pruning configuration talks about:
/// the output channels of a conv with everything they flow through, merged with every other producer
/// tied to them by Add/Mul (residuals, gates), depthwise convs or channel padding.
/// </summary>
/// <param name="Index">Position in <see cref="ChannelGroups.Groups"/>; also accepted as a name ("g3").</param>
/// <param name="Name">The first producer's node name: stable across runs of the same file.</param>
/// <param name="Size">Channels in the group (one channel may appear in several tensors).</param>
/// <param name="Producers">Nodes whose output channels (filters) belong to the group.</param>
/// <param name="Consumers">Nodes whose input channels belong to the group (they lose input slices).</param>
/// <param name="Prunable">False when the channels reach the graph's input or output or an op we cannot slice.</param>
/// <param name="Reason">Why the group is not prunable.</param>
public sealed record ChannelGroup(
    int Index, string Name, int Size, IReadOnlyList<string> Producers, IReadOnlyList<string> Consumers,
    bool Prunable, string? Reason)
{
    /// <summary>The fewest channels a configuration may keep (at least one, or one rounding multiple).</summary>
    public int MinKeep(int roundTo = 1) => Math.Min(Size, Math.Max(1, roundTo));

    /// <summary>A kept count rounded to a multiple (for real speed on SIMD runtimes), within [MinKeep, Size].</summary>
    public int RoundKeep(double count, int roundTo = 1)
    {
        if (roundTo <= 1) return Math.Clamp((int)Math.Round(count, MidpointRounding.AwayFromZero), MinKeep(), Size);
        int rounded = (int)Math.Round(count / roundTo, MidpointRounding.AwayFromZero) * roundTo;
        return Math.Clamp(rounded, MinKeep(roundTo), Size);
    }
}

/// <summary>
/// Channel dependency analysis on a static ONNX graph (the idea of Torch-Pruning's DepGraph). Every channel
/// of every tensor gets an id; ops that tie channels (Add, Mul, depthwise Conv, BN, activations, pools, Flatten)
/// map or merge ids; a group is a connected set of producers' channels. Computed once per model.
/// </summary>
public sealed class ChannelGroups
{
    readonly UnionFind classes = new();
    readonly List<IdOrigin> origins = [];
    readonly Dictionary<string, ChannelSpace> spaces = new(StringComparer.Ordinal);
    readonly Dictionary<int, string> pinned = []; // id → why it cannot be pruned
    int[] classOfId = [];          // id → dense channel index within its group
    int[] groupOfId = [];          // id → group index

    ChannelGroups(ModelProto model)
    {
        Model = model;
        Graph = new OnnxGraph(model);
        Shapes = ShapeInference.Infer(Graph);
        foreach (var input in Graph.Inputs) AssignInput(input.Name);
        foreach (var node in Graph.Nodes) Visit(node);
        foreach (var output in Graph.Outputs)
            if (spaces.TryGetValue(output.Name, out var space)) Pin(space.Ids, $"reaches the graph output '{output.Name}'");
        Groups = BuildGroups();
    }

    public static ChannelGroups Analyze(ModelProto model) => new(model);

    public ModelProto Model { get; }

    internal OnnxGraph Graph { get; }

    internal IReadOnlyDictionary<string, TensorInfo> Shapes { get; }

    public IReadOnlyList<ChannelGroup> Groups { get; }

    public IEnumerable<ChannelGroup> Prunable => Groups.Where(g => g.Prunable);

    /// <summary>A group by name or by "gN" index.</summary>
    public ChannelGroup Find(string nameOrIndex)
    {
        if (nameOrIndex.Length > 1 && nameOrIndex[0] == 'g' && int.TryParse(nameOrIndex[1..], out int index) && index >= 0 && index < Groups.Count)
            return Groups[index];
        return Groups.FirstOrDefault(g => g.Name == nameOrIndex)
            ?? throw new ArgumentException($"no channel group named '{nameOrIndex}'; groups are g0..g{Groups.Count - 1} " +
                                           $"(see 'paretoprune inspect MODEL --groups')");
    }

    /// <summary>The channel space of a tensor: which axis carries channels, and the (group, channel) of each position.</summary>
    internal bool TryGetSpace(string tensor, out ChannelSpace space) => spaces.TryGetValue(tensor, out space!);

    internal (int Group, int Channel) Locate(int id) => (groupOfId[id], classOfId[id]);

    internal IdOrigin Origin(int id) => origins[id];

    readonly Dictionary<string, float[]> floats = new(StringComparer.Ordinal);

    /// <summary>An initializer's values, decoded once (importance criteria read the same weights for every group).</summary>
    internal float[] Floats(TensorProto tensor)
    {
        if (!floats.TryGetValue(tensor.Name, out var values)) floats[tensor.Name] = values = OnnxTensors.ReadFloats(tensor);
        return values;
    }

    internal int IdCount => origins.Count;

    // ---- building the id spaces -------------------------------------------------------------------------

    /// <summary>Where an id was created: a producer's output channel, a padding channel, or something opaque.</summary>
    internal readonly record struct IdOrigin(NodeProto? Producer, int Position, int Batch);

    readonly List<string> batchLabels = []; // what created each batch of ids, for naming producer-less groups

    int batchCounter;

    int[] Fresh(int count, NodeProto? producer, string? label = null)
    {
        int batch = batchCounter++;
        batchLabels.Add(label ?? (producer is null ? $"b{batch}" : Graph.NameOf(producer)));
        var ids = new int[count];
        for (int i = 0; i < count; i++)
        {
            ids[i] = origins.Count;
            origins.Add(new IdOrigin(producer, i, batch));
            classes.Add();
        }
        return ids;
    }

    void Pin(IEnumerable<int> ids, string reason)
    {
        foreach (int id in ids) pinned.TryAdd(id, reason);
    }

    long[] ShapeOf(string tensor) => Shapes.TryGetValue(tensor, out var info) ? info.Shape : [];

    void AssignInput(string name)
    {
        var shape = ShapeOf(name);
        if (shape.Length < 2) return;
        var ids = Fresh((int)shape[1], null, $"input:{name}");
        Pin(ids, $"reaches the graph input '{name}'");
        spaces[name] = new ChannelSpace(1, ids);
    }

    /// <summary>An op we cannot slice through: its inputs' channels are pinned and its outputs get pinned ids.</summary>
    void Opaque(NodeProto node, string why)
    {
        string reason = $"flows into {node.OpType} node '{Graph.NameOf(node)}' ({why})";
        foreach (string input in node.Input)
            if (input.Length > 0 && spaces.TryGetValue(input, out var space)) Pin(space.Ids, reason);
        foreach (string output in node.Output)
        {
            var shape = ShapeOf(output);
            if (output.Length == 0 || shape.Length < 2) continue;
            var ids = Fresh((int)shape[1], null, $"opaque:{Graph.NameOf(node)}");
            Pin(ids, reason);
            spaces[output] = new ChannelSpace(1, ids);
        }
    }

    void Visit(NodeProto node)
    {
        if (node.OpType is "Constant" or "Shape") return;
        var activations = node.Input.Where(i => i.Length > 0 && spaces.ContainsKey(i)).ToList();
        if (activations.Count == 0) return; // computes on constants only (shape arithmetic)
        string name = Graph.NameOf(node);
        switch (node.OpType)
        {
            case "Relu" or "LeakyRelu" or "Clip" or "Sigmoid" or "HardSigmoid" or "HardSwish" or "Tanh" or "Identity" or "Cast"
                or "BatchNormalization" or "MaxPool" or "AveragePool" or "GlobalAveragePool" or "GlobalMaxPool" or "Dropout":
                {
                    var space = spaces[node.Input[0]];
                    if (node.OpType == "BatchNormalization" && space.Axis != 1) { Opaque(node, "normalises a non-channel axis"); return; }
                    spaces[node.Output[0]] = space; // later outputs (Dropout mask, MaxPool indices) are not activations
                    return;
                }
            case "Softmax" or "LogSoftmax":
                {
                    var space = spaces[node.Input[0]];
                    int rank = ShapeOf(node.Input[0]).Length;
                    long axis = node.GetInt("axis", Graph.OpsetVersion >= 13 ? -1 : 1);
                    if (axis < 0) axis += rank;
                    if (axis == space.Axis || Graph.OpsetVersion < 13 && axis <= space.Axis) { Opaque(node, "normalises across channels"); return; }
                    spaces[node.Output[0]] = space;
                    return;
                }
            case "Conv":
                VisitConv(node, name);
                return;
            case "Add" or "Mul" or "Sub" or "Div":
                VisitElementwise(node);
                return;
            case "Concat":
                VisitConcat(node);
                return;
            case "Pad":
                VisitPad(node);
                return;
            case "Flatten":
                {
                    var space = spaces[node.Input[0]];
                    long axis = node.GetInt("axis", 1);
                    var shape = ShapeOf(node.Input[0]);
                    if (axis < 0) axis += shape.Length;
                    if (axis != 1 || space.Axis != 1) { Opaque(node, $"flattens from axis {axis}"); return; }
                    spaces[node.Output[0]] = space.Flattened(shape);
                    return;
                }
            case "Reshape":
                {
                    var space = spaces[node.Input[0]];
                    var input = ShapeOf(node.Input[0]);
                    var output = ShapeOf(node.Output[0]);
                    if (input.SequenceEqual(output)) { spaces[node.Output[0]] = space; return; }
                    if (output.Length == 2 && output[0] == input[0] && space.Axis == 1 && input.Length >= 2)
                    {
                        spaces[node.Output[0]] = space.Flattened(input);
                        return;
                    }
                    Opaque(node, $"reshapes [{string.Join("x", input)}] to [{string.Join("x", output)}]");
                    return;
                }
            case "Unsqueeze" or "Squeeze":
                {
                    var space = spaces[node.Input[0]];
                    int? axis = MovedAxis(node, space.Axis, ShapeOf(node.Input[0]).Length);
                    if (axis is null) { Opaque(node, "removes the channel axis or has axes computed at run time"); return; }
                    spaces[node.Output[0]] = space with { Axis = axis.Value };
                    return;
                }
            case "Gemm":
                VisitMatrixProduct(node, name, transposedA: node.GetInt("transA", 0) != 0, transposedB: node.GetInt("transB", 0) != 0);
                return;
            case "MatMul":
                VisitMatrixProduct(node, name, transposedA: false, transposedB: false);
                return;
            default:
                Opaque(node, "this op is not sliced by the pruner");
                return;
        }
    }

    /// <summary>Where the channel axis lands after Unsqueeze or Squeeze, or null if it is removed.</summary>
    int? MovedAxis(NodeProto node, int axis, int rank)
    {
        long[]? axes = Graph.OpsetVersion >= 13
            ? (node.Input.Count > 1 && Graph.Constant(node.Input[1]) is { } t ? OnnxTensors.ReadInt64s(t) : null)
            : node.GetInts("axes");
        if (node.OpType == "Unsqueeze")
        {
            if (axes is null) return null;
            int outputRank = rank + axes.Length;
            var inserted = axes.Select(a => a < 0 ? a + outputRank : a).ToHashSet();
            for (int d = 0, seen = 0; d < outputRank; d++)
            {
                if (inserted.Contains(d)) continue;
                if (seen++ == axis) return d;
            }
            return null;
        }
        var input = ShapeOf(node.Input[0]);
        var removed = axes is null
            ? Enumerable.Range(0, rank).Where(d => input[d] == 1).Select(d => (long)d).ToHashSet()
            : axes.Select(a => a < 0 ? a + rank : a).ToHashSet();
        if (removed.Contains(axis)) return null;
        return axis - removed.Count(d => d < axis);
    }

    void VisitConv(NodeProto node, string name)
    {
        var input = spaces[node.Input[0]];
        if (input.Axis != 1 || !Graph.IsConstant(node.Input[1])) { Opaque(node, "weights computed at run time"); return; }
        var weight = ShapeOf(node.Input[1]);
        long group = node.GetInt("group", 1);
        long channels = ShapeOf(node.Input[0])[1];
        if (group == 1)
        {
            spaces[node.Output[0]] = new ChannelSpace(1, Fresh((int)weight[0], node));
            return;
        }
        if (group == channels && weight[0] == channels)
        {
            spaces[node.Output[0]] = input; // depthwise: output channel c is input channel c
            return;
        }
        Opaque(node, group == channels ? $"depthwise with channel multiplier {weight[0] / channels}" : $"grouped convolution, group={group}");
    }

    void VisitElementwise(NodeProto node)
    {
        var output = ShapeOf(node.Output[0]);
        var full = node.Input.Where(i => i.Length > 0 && spaces.ContainsKey(i))
                             .Select(i => (Name: i, Space: spaces[i], Shape: ShapeOf(i))).ToList();
        // The channel axis, counted from the right, must agree for every activation that has more than one channel there.
        var reference = full.OrderByDescending(f => f.Shape.Length).ThenByDescending(f => f.Space.Ids.Length).First();
        int fromRight = reference.Shape.Length - reference.Space.Axis;
        var outputSpace = new ChannelSpace(output.Length - fromRight, reference.Space.Ids);
        if (outputSpace.Axis < 0 || output[outputSpace.Axis] != reference.Space.Ids.Length)
        {
            Opaque(node, "broadcasts a constant into new channels");
            return;
        }
        foreach (var (inputName, space, shape) in full)
        {
            if (ReferenceEquals(space.Ids, reference.Space.Ids)) continue;
            int axisFromRight = shape.Length - space.Axis;
            if (space.Ids.Length == 1 && reference.Space.Ids.Length > 1 && axisFromRight == fromRight) continue; // broadcast over channels
            if (axisFromRight != fromRight || space.Ids.Length != reference.Space.Ids.Length)
            {
                Opaque(node, "combines tensors whose channel axes do not line up");
                return;
            }
            for (int i = 0; i < space.Ids.Length; i++) classes.Union(space.Ids[i], reference.Space.Ids[i]);
        }
        // A constant broadcast along the channel axis is sliced with the channels; other constants are left alone.
        spaces[node.Output[0]] = outputSpace;
    }

    void VisitConcat(NodeProto node)
    {
        var shape = ShapeOf(node.Output[0]);
        long axis = node.GetInt("axis", 0);
        if (axis < 0) axis += shape.Length;
        var inputs = node.Input.Where(i => i.Length > 0).ToList();
        if (inputs.Any(i => !spaces.ContainsKey(i))) { Opaque(node, "concatenates a constant"); return; }
        var first = spaces[inputs[0]];
        if (inputs.Any(i => spaces[i].Axis != first.Axis)) { Opaque(node, "inputs have different channel axes"); return; }
        if (axis == first.Axis)
        {
            spaces[node.Output[0]] = new ChannelSpace(first.Axis, inputs.SelectMany(i => spaces[i].Ids).ToArray());
            return;
        }
        foreach (string input in inputs.Skip(1))
        {
            var ids = spaces[input].Ids;
            if (ids.Length != first.Ids.Length) { Opaque(node, "inputs have different channel counts"); return; }
            for (int i = 0; i < ids.Length; i++) classes.Union(ids[i], first.Ids[i]);
        }
        spaces[node.Output[0]] = first;
    }

    void VisitPad(NodeProto node)
    {
        var space = spaces[node.Input[0]];
        var pads = PadAmounts(node);
        int rank = ShapeOf(node.Input[0]).Length;
        if (pads is null) { Opaque(node, "pads computed at run time"); return; }
        long before = pads[space.Axis], after = pads[space.Axis + rank];
        if (before == 0 && after == 0) { spaces[node.Output[0]] = space; return; }
        string mode = node.GetString("mode", "constant");
        if (mode != "constant" || before < 0 || after < 0 || space.Ids.Length != ShapeOf(node.Input[0])[space.Axis])
        {
            Opaque(node, $"pads the channel axis in mode '{mode}'");
            return;
        }
        // Padding channels are new, constant channels: they join whatever group they are added to.
        string label = $"padding:{Graph.NameOf(node)}";
        var ids = Fresh((int)before, null, label).Concat(space.Ids).Concat(Fresh((int)after, null, label)).ToArray();
        spaces[node.Output[0]] = new ChannelSpace(space.Axis, ids);
    }

    internal long[]? PadAmounts(NodeProto node)
    {
        if (Graph.OpsetVersion >= 11)
            return node.Input.Count > 1 && Graph.Constant(node.Input[1]) is { } t ? OnnxTensors.ReadInt64s(t) : null;
        return node.GetInts("pads") ?? node.GetInts("paddings");
    }

    void VisitMatrixProduct(NodeProto node, string name, bool transposedA, bool transposedB)
    {
        var a = spaces.GetValueOrDefault(node.Input[0]);
        var aShape = ShapeOf(node.Input[0]);
        int innerAxis = transposedA ? aShape.Length - 2 : aShape.Length - 1;
        if (a is null || a.Axis != innerAxis || !Graph.IsConstant(node.Input[1]) || ShapeOf(node.Input[1]).Length != 2
            || spaces.ContainsKey(node.Input[1]))
        {
            Opaque(node, "its inner dimension is not the input's channel or feature axis, or its weight is not a 2-D constant");
            return;
        }
        var output = ShapeOf(node.Output[0]);
        var weight = ShapeOf(node.Input[1]);
        int outputs = (int)(transposedB ? weight[0] : weight[1]);
        spaces[node.Output[0]] = new ChannelSpace(output.Length - 1, Fresh(outputs, node));
    }

    // ---- groups -----------------------------------------------------------------------------------------

    List<ChannelGroup> BuildGroups()
    {
        // Creation batches linked through any merged channel form one group.
        var batches = new UnionFind();
        for (int b = 0; b < batchCounter; b++) batches.Add();
        var batchOfRoot = new Dictionary<int, int>();
        for (int id = 0; id < origins.Count; id++)
        {
            int root = classes.Find(id);
            if (batchOfRoot.TryGetValue(root, out int batch)) batches.Union(batch, origins[id].Batch);
            else batchOfRoot[root] = origins[id].Batch;
        }

        // Only ids that live in some tensor matter (a padding batch always does).
        var liveIds = new HashSet<int>(spaces.Values.SelectMany(s => s.Ids));
        var groupOfBatchRoot = new Dictionary<int, int>();
        var members = new List<List<int>>(); // per group: ids, in creation order
        groupOfId = new int[origins.Count];
        classOfId = new int[origins.Count];
        Array.Fill(groupOfId, -1);
        for (int id = 0; id < origins.Count; id++)
        {
            if (!liveIds.Contains(id)) continue;
            int batchRoot = batches.Find(origins[id].Batch);
            if (!groupOfBatchRoot.TryGetValue(batchRoot, out int group))
            {
                group = groupOfBatchRoot[batchRoot] = members.Count;
                members.Add([]);
            }
            members[group].Add(id);
            groupOfId[id] = group;
        }

        var groups = new List<ChannelGroup>(members.Count);
        for (int g = 0; g < members.Count; g++)
        {
            var channelOfRoot = new Dictionary<int, int>();
            foreach (int id in members[g])
            {
                int root = classes.Find(id);
                if (!channelOfRoot.TryGetValue(root, out int channel)) channel = channelOfRoot[root] = channelOfRoot.Count;
                classOfId[id] = channel;
            }
            var producers = members[g].Select(id => origins[id].Producer).Where(p => p is not null).Distinct()
                                      .Select(p => Graph.NameOf(p!)).ToList();
            string? reason = members[g].Select(id => pinned.GetValueOrDefault(id)).FirstOrDefault(r => r is not null);
            var consumers = ConsumersOf(g);
            string name = producers.Count > 0 ? producers[0] : batchLabels[origins[members[g][0]].Batch];
            groups.Add(new ChannelGroup(g, name, channelOfRoot.Count, producers, consumers, reason is null, reason));
        }
        return groups;
    }

    List<string> ConsumersOf(int group)
    {
        var result = new List<string>();
        foreach (var node in Graph.Nodes)
        {
            if (node.OpType is not ("Conv" or "Gemm" or "MatMul")) continue;
            if (spaces.TryGetValue(node.Input[0], out var space) && space.Ids.Any(id => groupOfId[id] == group)
                && !(node.OpType == "Conv" && node.GetInt("group", 1) > 1))
                result.Add(Graph.NameOf(node));
        }
        return result;
    }
}

/// <summary>Which axis of a tensor carries channels, and the channel id at each position of that axis.</summary>
internal sealed record ChannelSpace(int Axis, int[] Ids)
{
    /// <summary>Flatten of N×C×H×W: feature f belongs to channel f / (H·W).</summary>
    public ChannelSpace Flattened(long[] shape)
    {
        long perChannel = shape.Skip(Axis + 1).Aggregate(1L, (a, d) => a * d);
        var ids = new int[Ids.Length * perChannel];
        for (int c = 0; c < Ids.Length; c++)
            Array.Fill(ids, Ids[c], (int)(c * perChannel), (int)perChannel);
        return new ChannelSpace(1, ids);
    }
}

/// <summary>Disjoint sets with path halving and union by size.</summary>
internal sealed class UnionFind
{
    readonly List<int> parent = [];
    readonly List<int> size = [];

    public void Add()
    {
        parent.Add(parent.Count);
        size.Add(1);
    }

    public int Find(int x)
    {
        while (parent[x] != x)
        {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        return x;
    }

    public void Union(int a, int b)
    {
        a = Find(a);
        b = Find(b);
        if (a == b) return;
        if (size[a] < size[b]) (a, b) = (b, a);
        parent[b] = a;
        size[a] += size[b];
    }
}
