using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>
/// Scores the channels of a group: higher means more important, kept first. Weight-based criteria read the
/// graph's initializers; data-driven ones (Taylor, APoZ, LRP) carry their data and a trainer.
/// </summary>
public interface IImportance
{
    string Name { get; }

    /// <summary>One score per channel of <paramref name="group"/>.</summary>
    double[] Score(ChannelGroups groups, ChannelGroup group);
}

/// <summary>How the scores of one channel in several coupled layers (a residual's convs, say) are combined.
/// <see cref="Mean"/> averages over all the group's layers, a layer where the channel does not exist counting zero: a
/// residual stream widened by zero-padding shortcuts has early channels that run through every stage and late ones
/// that exist only in the last, and removing an early one costs more.</summary>
public enum ImportanceAggregation { Mean, Sum, Max }

/// <summary>One channel's slice of one layer's parameters: a conv filter, a Gemm row, a BN γ.</summary>
internal readonly record struct ChannelSlice(string Layer, int Channel, float[] Values);

/// <summary>The weight-based criteria: L1 and L2 norms of filters (Li et al. 2017), FPGM, BN γ, random.</summary>
public sealed class WeightImportance : IImportance
{
    public enum Criterion { L1, L2, Fpgm, BatchNormGamma, Random }

    readonly Criterion criterion;
    readonly ImportanceAggregation aggregation;
    readonly int seed;

    public WeightImportance(Criterion criterion, ImportanceAggregation aggregation = ImportanceAggregation.Mean, int seed = 0)
    {
        this.criterion = criterion;
        this.aggregation = aggregation;
        this.seed = seed;
    }

    public string Name => criterion switch
    {
        Criterion.L1 => "l1",
        Criterion.L2 => "l2",
        Criterion.Fpgm => "fpgm",
        Criterion.BatchNormGamma => "bn",
        _ => "random",
    };

    /// <summary>Parses a CLI criterion name: l1, l2, fpgm, bn, random.</summary>
    public static WeightImportance Parse(string name, int seed = 0) => name.ToLowerInvariant() switch
    {
        "l1" => new(Criterion.L1),
        "l2" => new(Criterion.L2),
        "fpgm" => new(Criterion.Fpgm),
        "bn" or "bn-gamma" => new(Criterion.BatchNormGamma),
        "random" => new(Criterion.Random, seed: seed),
        _ => throw new ArgumentException($"unknown criterion '{name}'; weight-based criteria are l1, l2, fpgm, bn, random"),
    };

    public double[] Score(ChannelGroups groups, ChannelGroup group)
    {
        if (criterion == Criterion.Random)
        {
            var random = new Random(unchecked(seed * 7919 + group.Index)); // not HashCode.Combine: it is seeded per process
            return Enumerable.Range(0, group.Size).Select(_ => random.NextDouble()).ToArray();
        }
        var slices = ChannelSlices.Of(groups, group, criterion == Criterion.BatchNormGamma ? ChannelSlices.Kind.BatchNormGamma : ChannelSlices.Kind.Filters);
        if (criterion == Criterion.BatchNormGamma && slices.Count == 0)
            throw new PruningException($"criterion bn: group {group.Name} has no BatchNormalization; use l1, l2 or fpgm");
        var perLayer = criterion == Criterion.Fpgm ? GeometricMedianDistances(slices) : slices.Select(s => (s.Layer, s.Channel, Norm(s.Values))).ToList();
        return Aggregate(perLayer, group.Size, aggregation);
    }

    double Norm(float[] values) => criterion switch
    {
        Criterion.L1 => values.Sum(v => (double)Math.Abs(v)),
        Criterion.BatchNormGamma => values.Sum(v => (double)Math.Abs(v)),
        _ => Math.Sqrt(values.Sum(v => (double)v * v)),
    };

    /// <summary>FPGM (He et al. 2019): a filter close to the others' geometric median is replaceable. Its distance to the
    /// median is approximated, as in the paper's code, by the sum of distances to every filter of the same layer.</summary>
    static List<(string Layer, int Channel, double Score)> GeometricMedianDistances(List<ChannelSlice> slices)
    {
        var result = new List<(string, int, double)>(slices.Count);
        foreach (var layer in slices.GroupBy(s => s.Layer))
        {
            var filters = layer.ToList();
            foreach (var a in filters)
            {
                double total = 0;
                foreach (var b in filters)
                {
                    double squared = 0;
                    for (int i = 0; i < a.Values.Length; i++) { double d = a.Values[i] - b.Values[i]; squared += d * d; }
                    total += Math.Sqrt(squared);
                }
                result.Add((a.Layer, a.Channel, total));
            }
        }
        return result;
    }

    internal static double[] Aggregate(IEnumerable<(string Layer, int Channel, double Score)> scores, int size, ImportanceAggregation aggregation)
    {
        var total = new double[size];
        var count = new int[size];
        var layers = new HashSet<string>();
        foreach (var (layer, channel, score) in scores)
        {
            total[channel] = aggregation == ImportanceAggregation.Max && count[channel] > 0 ? Math.Max(total[channel], score) : total[channel] + score;
            count[channel]++;
            layers.Add(layer);
        }
        if (aggregation == ImportanceAggregation.Mean && layers.Count > 0)
            for (int c = 0; c < size; c++) total[c] /= layers.Count;
        return total;
    }
}

/// <summary>Finds the parameter slices that belong to each channel of a group, in every coupled layer.</summary>
internal static class ChannelSlices
{
    public enum Kind { Filters, BatchNormGamma }

    public static List<ChannelSlice> Of(ChannelGroups groups, ChannelGroup group, Kind kind)
    {
        var graph = groups.Graph;
        var result = new List<ChannelSlice>();
        foreach (var node in graph.Nodes)
        {
            string layer = graph.NameOf(node);
            var rule = OpRegistry.Find(node);
            if (kind == Kind.Filters && rule?.FilterWeight(node) is var (input, axis) && groups.TryGetSpace(node.Output[0], out var space))
                AddRows(result, groups, group, layer, space.Ids, graph.Constant(node.Input[input]), axis);
            else if (kind == Kind.BatchNormGamma && rule?.ChannelScale(node) is { } scale && groups.TryGetSpace(node.Input[0], out space))
                AddRows(result, groups, group, layer, space.Ids, graph.Constant(node.Input[scale]), 0);
        }
        return result;
    }

    /// <summary>The slices of <paramref name="weight"/> along <paramref name="axis"/> that belong to the group's channels.</summary>
    static void AddRows(List<ChannelSlice> result, ChannelGroups groups, ChannelGroup group, string layer, int[] ids,
                        TensorProto? weight, int axis)
    {
        if (weight is null || !ids.Any(id => groups.Locate(id).Group == group.Index)) return;
        var values = groups.Floats(weight);
        var dims = weight.Dims.ToArray();
        if (axis >= dims.Length || dims[axis] != ids.Length) return;
        int rows = ids.Length;
        long outer = dims.Take(axis).Aggregate(1L, (a, d) => a * d), inner = dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);
        for (int r = 0; r < rows; r++)
        {
            var (g, channel) = groups.Locate(ids[r]);
            if (g != group.Index) continue;
            var slice = new float[outer * inner];
            for (long o = 0; o < outer; o++) Array.Copy(values, (o * rows + r) * inner, slice, o * inner, inner);
            result.Add(new ChannelSlice(layer, channel, slice));
        }
    }
}
