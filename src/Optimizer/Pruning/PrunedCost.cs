using ParetoPrune.Objectives.Onnx;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>
/// MACs and parameters of a pruned model, computed from the original graph and a selection without building the
/// pruned model (the search evaluates thousands of candidates this way). Same counting rules as <see cref="ModelCost"/>.
/// </summary>
public static class PrunedCost
{
    public static (long Macs, long Params) Predict(PruningSelection selection)
    {
        var (macs, parameters, _) = PredictWithStatistics(selection);
        return (macs, parameters);
    }

    /// <summary>Also the BN running statistics kept (stored floats that are not parameters), for the file size.</summary>
    internal static (long Macs, long Params, long Statistics) PredictWithStatistics(PruningSelection selection)
    {
        var groups = selection.Groups;
        var graph = groups.Graph;
        var keptIds = selection.KeptIds();
        var counted = new HashSet<string>(StringComparer.Ordinal);

        long Kept(string tensor, long full) =>
            groups.TryGetSpace(tensor, out var space) ? space.Ids.Count(id => keptIds[id]) : full;

        long macs = 0, parameters = 0, statistics = 0;
        long Weight(string name, long elements) => name.Length > 0 && graph.IsInitializer(name) && counted.Add(name) ? elements : 0;

        foreach (var node in graph.Nodes)
        {
            switch (node.OpType)
            {
                case "Conv":
                    {
                        var output = groups.Shapes[node.Output[0]].Shape;
                        var weight = groups.Shapes[node.Input[1]].Shape;
                        long kernel = weight.Skip(2).Aggregate(1L, (a, d) => a * d);
                        long outChannels = Kept(node.Output[0], output[1]);
                        long group = node.GetInt("group", 1);
                        long inPerGroup = group == 1 ? Kept(node.Input[0], weight[1]) : weight[1];
                        long spatial = output.Skip(2).Aggregate(output[0], (a, d) => a * d);
                        macs += spatial * outChannels * inPerGroup * kernel;
                        parameters += Weight(node.Input[1], outChannels * inPerGroup * kernel);
                        if (node.Input.Count > 2) parameters += Weight(node.Input[2], outChannels);
                        break;
                    }
                case "Gemm" or "MatMul":
                    {
                        var output = groups.Shapes[node.Output[0]].Shape;
                        var a = groups.Shapes[node.Input[0]].Shape;
                        bool transA = node.OpType == "Gemm" && node.GetInt("transA", 0) != 0;
                        long inner = Kept(node.Input[0], transA ? a[^2] : a[^1]);
                        long outputs = Kept(node.Output[0], output[^1]);
                        long rows = output.Take(output.Length - 1).Aggregate(1L, (x, d) => x * d);
                        macs += rows * inner * outputs;
                        parameters += Weight(node.Input[1], inner * outputs);
                        if (node.OpType == "Gemm" && node.Input.Count > 2 && node.Input[2].Length > 0)
                        {
                            var bias = groups.Shapes[node.Input[2]].Shape;
                            long elements = bias.Aggregate(1L, (x, d) => x * d);
                            parameters += Weight(node.Input[2], bias.Length > 0 && bias[^1] == output[^1] ? elements / output[^1] * outputs : elements);
                        }
                        break;
                    }
                case "BatchNormalization":
                    {
                        long channels = Kept(node.Input[0], groups.Shapes[node.Input[0]].Shape[1]);
                        parameters += Weight(node.Input[1], channels) + Weight(node.Input[2], channels);
                        statistics += Weight(node.Input[3], channels) + Weight(node.Input[4], channels);
                        break;
                    }
                case "Add" or "Mul":
                    {
                        groups.TryGetSpace(node.Output[0], out var space);
                        var outputShape = groups.Shapes[node.Output[0]].Shape;
                        foreach (string input in node.Input)
                        {
                            if (!graph.IsInitializer(input) || graph.Constant(input)!.DataType != (int)Objectives.Onnx.Proto.TensorProto.Types.DataType.Float) continue;
                            var shape = groups.Shapes[input].Shape;
                            long elements = shape.Aggregate(1L, (x, d) => x * d);
                            if (space is not null)
                            {
                                int axis = shape.Length - (outputShape.Length - space.Axis);
                                if (axis >= 0 && shape[axis] == space.Ids.Length && space.Ids.Length > 1)
                                    elements = elements / shape[axis] * space.Ids.Count(id => keptIds[id]);
                            }
                            parameters += Weight(input, elements);
                        }
                        break;
                    }
            }
        }
        return (macs, parameters, statistics);
    }
}
