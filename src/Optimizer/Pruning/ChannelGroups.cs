using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
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
public sealed class ChannelGroups : IChannelFlow
{
    readonly UnionFind classes = new();
    readonly List<IdOrigin> origins = [];
    readonly Dictionary<string, ChannelSpace> spaces = new(StringComparer.Ordinal);
    readonly Dictionary<int, string> pinned = []; // id → why it cannot be pruned
    int[] classOfId = [];          // id → dense channel index within its group
    int[] groupOfId = [];          // id → group index

    ChannelGroups(ModelProto model)
    {
        if (OnnxModel.IsQuantized(model))
            throw new OnnxModelException("the model is quantized (QuantizeLinear/DequantizeLinear nodes): prune and fine-tune the float model, " +
                                         "then quantize the result (paretoprune quantize, compare METHOD+int8, search --quantize)");
        Model = ExportNormalizer.Normalize(model); // aliased weights would otherwise be sliced two ways
        Graph = new OnnxGraph(model);
        Shapes = ShapeInference.Infer(Graph);
        foreach (var input in Graph.Inputs) AssignInput(input.Name);
        foreach (var node in Graph.Nodes) Visit(node);
        foreach (var output in Graph.Outputs)
            if (spaces.TryGetValue(output.Name, out var space)) Pin(space.Ids, $"reaches the graph output '{output.Name}'");
        Groups = BuildGroups();
    }

    public static ChannelGroups Analyze(ModelProto model) => new(model);

    /// <summary>The analysed model: the given one, normalised where an exporter's form needed it (see <see cref="ExportNormalizer"/>).</summary>
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
        if (!node.Input.Any(i => i.Length > 0 && spaces.ContainsKey(i))) return; // computes on constants or shapes only
        if (OpRegistry.Find(node) is { } rule) rule.FlowChannels(node, this);
        else Opaque(node, "an op without rules here; ONNX Runtime runs it, but its effect on channels is not followed");
    }

    // ---- IChannelFlow: the behaviours a rule chooses from ---------------------------------------------------

    OnnxGraph IChannelFlow.Graph => Graph;

    TensorInfo IChannelFlow.Info(string tensor) => Shapes[tensor];

    int? IChannelFlow.ChannelAxis(string tensor) => spaces.TryGetValue(tensor, out var space) ? space.Axis : null;

    void IChannelFlow.Follow(string input, string output, int? axis)
    {
        var space = spaces[input];
        spaces[output] = axis is { } a && a != space.Axis ? space with { Axis = a } : space;
    }

    void IChannelFlow.Produce(NodeProto producer, string output, int axis, int count) =>
        spaces[output] = new ChannelSpace(axis, Fresh(count, producer));

    void IChannelFlow.Consume(NodeProto consumer, string input) => consumed.Add((consumer, input));

    readonly List<(NodeProto Node, string Input)> consumed = [];

    void IChannelFlow.Pin(NodeProto node, string why) => Opaque(node, why);

    void IChannelFlow.Merge(NodeProto node)
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
        // A constant broadcast along the channel axis is sliced with the channels (the rule's Slice); others stay.
        spaces[node.Output[0]] = outputSpace;
    }

    void IChannelFlow.Concatenate(NodeProto node, int axis)
    {
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

    void IChannelFlow.Pad(NodeProto node, long before, long after)
    {
        var space = spaces[node.Input[0]];
        if (space.Ids.Length != ShapeOf(node.Input[0])[space.Axis]) { Opaque(node, "pads a flattened channel axis"); return; }
        // Padding channels are new, constant channels: they join whatever group they are added to.
        string label = $"padding:{Graph.NameOf(node)}";
        var ids = Fresh((int)before, null, label).Concat(space.Ids).Concat(Fresh((int)after, null, label)).ToArray();
        spaces[node.Output[0]] = new ChannelSpace(space.Axis, ids);
    }

    void IChannelFlow.Flatten(string input, string output) => spaces[output] = spaces[input].Flattened(ShapeOf(input));

    void IChannelFlow.Part(string input, string output, int start, int count)
    {
        var space = spaces[input];
        spaces[output] = space with { Ids = space.Ids[start..(start + count)] };
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

    List<string> ConsumersOf(int group) =>
        consumed.Where(c => spaces.TryGetValue(c.Input, out var space) && space.Ids.Any(id => groupOfId[id] == group))
                .Select(c => Graph.NameOf(c.Node)).Distinct().ToList();
}

/// <summary>Which axis of a tensor carries channels, and the channel id at each position of that axis.</summary>
internal sealed record ChannelSpace(int Axis, int[] Ids)
{
    /// <summary>Flatten of [N, …] to [N, features] with the channels at any axis from 1 on: feature f belongs to
    /// channel (f / positions after the channel axis) mod channels (N×C×H×W: f / (H·W); N×H×W×C: f mod C).</summary>
    public ChannelSpace Flattened(long[] shape)
    {
        long inner = shape.Skip(Axis + 1).Aggregate(1L, (a, d) => a * d);
        long features = shape.Skip(1).Aggregate(1L, (a, d) => a * d);
        var ids = new int[features];
        for (long f = 0; f < features; f++) ids[f] = Ids[(int)(f / inner % Ids.Length)];
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
