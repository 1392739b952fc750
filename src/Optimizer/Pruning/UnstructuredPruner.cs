using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>Sparsity of one layer's weight after magnitude pruning.</summary>
public sealed record LayerSparsity(string Layer, string Weight, long Elements, long Zeros)
{
    public double Sparsity => Elements == 0 ? 0 : (double)Zeros / Elements;
}

public enum SparsityScope { Global, PerLayer }

/// <summary>
/// Magnitude pruning: the smallest weights of Conv, Gemm and MatMul are set to zero. The file keeps its size (dense
/// tensors) and a dense runtime its speed; only compressed storage shrinks, which is why sizes are reported both ways.
/// </summary>
public static class UnstructuredPruner
{
    public static (ModelProto Model, IReadOnlyList<LayerSparsity> Layers) Prune(
        ModelProto model, double sparsity, SparsityScope scope = SparsityScope.Global, bool skipFirstAndLast = false)
    {
        if (sparsity is < 0 or >= 1 || double.IsNaN(sparsity))
            throw new ArgumentException($"sparsity is the fraction of weights set to zero and must be in [0, 1), got {sparsity}");
        var graph = new OnnxGraph(model);
        var layers = Layers(graph);
        if (layers.Count == 0) throw new ArgumentException("the model has no Conv, Gemm or MatMul weights to prune");
        var eligible = skipFirstAndLast && layers.Count > 2 ? layers.Skip(1).Take(layers.Count - 2).ToList() : layers;
        var skipped = layers.Except(eligible).Select(l => l.Weight).ToHashSet();

        var values = layers.ToDictionary(l => l.Weight, l => OnnxTensors.ReadFloats(graph.Constant(l.Weight)!));
        if (scope == SparsityScope.Global)
        {
            var all = eligible.SelectMany(l => values[l.Weight].Select(Math.Abs)).ToArray();
            float threshold = Threshold(all, sparsity, out int atThreshold);
            foreach (var (_, weight) in eligible) ZeroBelow(values[weight], threshold, ref atThreshold);
        }
        else
        {
            foreach (var (_, weight) in eligible)
            {
                float threshold = Threshold(values[weight].Select(Math.Abs).ToArray(), sparsity, out int atThreshold);
                ZeroBelow(values[weight], threshold, ref atThreshold);
            }
        }

        var result = model.Clone();
        for (int i = 0; i < result.Graph.Initializer.Count; i++)
        {
            var tensor = result.Graph.Initializer[i];
            if (values.TryGetValue(tensor.Name, out var v) && !skipped.Contains(tensor.Name))
                result.Graph.Initializer[i] = OnnxTensors.CreateFloat(tensor.Name, tensor.Dims.ToArray(), v);
        }
        var report = layers.Select(l => new LayerSparsity(graph.NameOf(l.Node), l.Weight, values[l.Weight].LongLength,
                                                          values[l.Weight].LongCount(x => x == 0))).ToList();
        return (result, report);
    }

    /// <summary>Zeros in the weights magnitude pruning works on (every Conv, Gemm and MatMul weight), layer by layer.</summary>
    public static IReadOnlyList<LayerSparsity> Measure(ModelProto model)
    {
        var graph = new OnnxGraph(model);
        return Layers(graph).Select(l =>
        {
            var values = OnnxTensors.ReadFloats(graph.Constant(l.Weight)!);
            return new LayerSparsity(graph.NameOf(l.Node), l.Weight, values.LongLength, values.LongCount(x => x == 0));
        }).ToList();
    }

    /// <summary>The prunable layers: those with a filter weight (<see cref="OpRule.FilterWeight"/>) that is an initializer, each weight once.</summary>
    static List<(NodeProto Node, string Weight)> Layers(OnnxGraph graph) =>
        graph.Nodes.Where(n => OpRegistry.Find(n)?.FilterWeight(n) is not null)
                   .Select(n => (Node: n, Weight: n.Input[OpRegistry.Find(n)!.FilterWeight(n)!.Value.Input]))
                   .Where(l => graph.IsInitializer(l.Weight))
                   .DistinctBy(l => l.Weight).ToList();

    /// <summary>The magnitude below which weights go, and how many weights equal to it must also go to hit the count exactly.</summary>
    static float Threshold(float[] magnitudes, double sparsity, out int atThreshold)
    {
        int count = (int)Math.Round(sparsity * magnitudes.Length, MidpointRounding.AwayFromZero);
        atThreshold = 0;
        if (count == 0) return -1;
        var sorted = magnitudes.ToArray();
        Array.Sort(sorted);
        float threshold = sorted[count - 1];
        int below = Array.FindIndex(sorted, m => m >= threshold);
        atThreshold = count - below;
        return threshold;
    }

    static void ZeroBelow(float[] weights, float threshold, ref int atThreshold)
    {
        for (int i = 0; i < weights.Length; i++)
        {
            float magnitude = Math.Abs(weights[i]);
            if (magnitude < threshold) weights[i] = 0;
            else if (magnitude == threshold && atThreshold > 0)
            {
                weights[i] = 0;
                atThreshold--;
            }
        }
    }
}
