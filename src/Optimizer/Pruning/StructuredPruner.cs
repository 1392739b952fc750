using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
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
/// Removes channels physically, by each op's rule (<see cref="OpRule.Slice"/>): conv filters and input slices, biases,
/// BN parameters and running statistics, depthwise <c>group</c> attributes, channel padding, split sizes and slice
/// bounds, constants broadcast along channels, and the columns of Gemm/MatMul. Everything else is copied unchanged.
/// </summary>
public static class StructuredPruner
{
    public static ModelProto Prune(PruningSelection selection)
    {
        var model = selection.Groups.Model.Clone();
        SlicePlan.Of(selection).ApplyTo(model);
        model.Graph.ValueInfo.Clear(); // intermediate shapes changed; they are optional and re-inferred by any reader
        return model;
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
